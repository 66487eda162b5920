"""ModHiFi on torch layers: subset-fidelity statistics from calibration data, pruning (ModHiFi-P) and unlearning
(ModHiFi-U) of the inputs of ``nn.Linear`` and ``nn.Conv2d`` layers.

Kashyap, Murti, Nayak, Narshana, Bhattacharyya, "ModHiFi: Identifying High Fidelity predictive components for
Model Modification" (NeurIPS 2025, arXiv 2511.19566). The math is in :mod:`hf_margin.functional.subset_fidelity`;
here forward hooks on a calibration DataLoader collect each layer's input moment ``E sum_p patch_p patch_p^T``, from
which the component similarity matrices ``Q_c`` follow for the current weights.

Algorithm 1 (ModHiFi-X), as implemented:

- **prune** (:func:`modhifi_prune`): score every (output c, input i) pair by its singleton fidelity ``s_ci``
  (Eq. 3); an input survives if it is among the top-k pairs for *some* output, i.e. inputs are ranked by
  ``max_c s_ci``, which for the k that removes the wanted number of inputs is the same selection. The
  kept weights are rescaled by the compensation ``delta*`` (Prop. 3.8, ridge 1e-4), the others zeroed. Repeated
  with ``step_fraction`` of the remaining inputs removed per step (paper: 0.01-0.2) until ``sparsity`` is reached;
- **unlearn** (:func:`modhifi_unlearn`): the same scores on forget-class data only; the top ``fraction`` of the
  (c, i) pairs are zeroed (or negated, the paper's variant for LayerNorm / residual networks).

Our choices where the paper is partial: the expectation is a mean over examples of a sum over output positions
(tokens for a 3-D linear input); with ``centre=True`` (the paper's BatchNorm variant,
``Q~_ij = E<A_i, A_j> - <E A_i, E A_j>``) the mean is over examples and positions, and a layer with a bias takes the
mean of what its pruning removes into the bias (the intercept of the least-squares fit); a BatchNorm after the layer
should instead have its statistics re-estimated, as the paper does. The LLM variant's score, "row norms of the
regularised Cholesky factor" of Q, equals ``sqrt(Q_ii + ridge)`` (row i of a Cholesky factor always has norm
``sqrt(Q_ii)``), i.e. a data-weighted weight magnitude; the general singleton score of Eq. 3 is used here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from hf_margin._validation import check_choice, check_finite, check_flags, check_number_in_range, check_positive_int
from hf_margin.functional.subset_fidelity import (
    component_similarity,
    optimal_compensation,
    singleton_fidelity,
    subset_fidelity,
)

Layer = nn.Linear | nn.Conv2d
Forward = Callable[[nn.Module, Any], Any]


@dataclass
class LayerFidelity:
    """Subset-fidelity statistics of one layer's inputs, for the layer's *current* weights.

    Args:
        name: the layer's name in the model.
        layer: the ``nn.Linear`` or ``nn.Conv2d`` itself.
        input_moment: (inputs * K, inputs * K) ``E sum_p patch_p patch_p^T`` (centred if `centred`), float64.
        input_mean: (inputs * K,) the mean patch over examples and positions.
        positions: output positions per example (1 for a 2-D linear input).
        examples: how many calibration examples were seen.
        centred: whether the moment is centred (BatchNorm networks).
    """

    name: str
    layer: Layer
    input_moment: Tensor
    input_mean: Tensor
    positions: float
    examples: int
    centred: bool

    @property
    def similarity(self) -> Tensor:
        """(outputs, inputs, inputs) the component similarity matrices ``Q_c`` of the current weights."""
        return component_similarity(self.layer.weight.detach(), self.input_moment)

    def singleton_scores(self) -> Tensor:
        """(outputs, inputs) ``s_ci = FS_c({i})`` (Eq. 3)."""
        return singleton_fidelity(self.similarity)

    def fidelity(self, keep: Tensor, ridge: float = 1e-4) -> Tensor:
        """(outputs,) ``FS_c(C)`` of the kept inputs `keep` ((inputs,) or (outputs, inputs) bool)."""
        return subset_fidelity(self.similarity, keep.to(self.input_moment.device), ridge)

    def compensation(self, keep: Tensor, ridge: float = 1e-4) -> Tensor:
        """(outputs, inputs) ``delta*`` for the kept inputs `keep` (Prop. 3.8)."""
        return optimal_compensation(self.similarity, keep.to(self.input_moment.device), ridge)

    def mean_components(self) -> Tensor:
        """(outputs, inputs) the mean of each component per position, ``m_ci = W_ci . E[patch_i]``."""
        weight = self.layer.weight.detach().to(self.input_mean)
        blocks = weight.reshape(weight.shape[0], weight.shape[1], -1)
        return (blocks * self.input_mean.reshape(weight.shape[1], -1)).sum(-1)


def _layers(model: object, layers: object) -> dict[str, Layer]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise TypeError(f"`layers` must be a non-empty list of layer names in `model`, got {layers!r}")
    found: dict[str, Layer] = {}
    for name in layers:
        try:
            layer = model.get_submodule(name)
        except (AttributeError, TypeError) as error:
            raise ValueError(f"`layers`: {name!r} is not a submodule of `model` ({error})") from None
        if not isinstance(layer, nn.Linear | nn.Conv2d):
            raise TypeError(f"`layers`: {name!r} must be an nn.Linear or nn.Conv2d, got {type(layer).__name__}")
        if isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros"):
            raise ValueError(
                f"`layers`: {name!r} must be a Conv2d with groups=1 and padding_mode='zeros', got groups="
                f"{layer.groups}, padding_mode={layer.padding_mode!r}"
            )
        if isinstance(layer, nn.Conv2d) and isinstance(layer.padding, str) and layer.padding != "valid":
            raise ValueError(f"`layers`: {name!r} uses padding={layer.padding!r}; give the padding as integers")
        found[name] = layer
    return found


def _patches(layer: Layer, x: Tensor) -> Tensor:
    """(examples, positions, inputs * K) the patches each output position of `layer` sees."""
    if isinstance(layer, nn.Linear):
        return x.reshape(x.shape[0], -1, x.shape[-1])
    padding = 0 if isinstance(layer.padding, str) else layer.padding
    unfolded = F.unfold(x, layer.kernel_size, layer.dilation, padding, layer.stride)
    return unfolded.transpose(1, 2)


def default_forward(model: nn.Module, batch: Any) -> Any:
    """Run `model` on one batch: a tensor, the first item of a tuple/list, or a mapping's entries but `labels`."""
    device = next(model.parameters()).device
    if isinstance(batch, Tensor):
        return model(batch.to(device))
    if isinstance(batch, (tuple, list)):
        return model(batch[0].to(device))
    if isinstance(batch, Mapping):
        return model(**{k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items() if k != "labels"})
    raise TypeError(f"`data` must yield tensors, tuples/lists or mappings; got a {type(batch).__name__}")


def layer_fidelity(
    model: nn.Module,
    data: Iterable[Any],
    layers: Sequence[str],
    *,
    centre: bool = False,
    forward: Forward | None = None,
    max_batches: int | None = None,
) -> dict[str, LayerFidelity]:
    """Collect each layer's input statistics on calibration data (ModHiFi, arXiv 2511.19566) with forward hooks.

    The model runs in eval mode without gradients (restored afterwards); its weights are not changed.

    Args:
        model: the network.
        data: calibration batches (a DataLoader): tensors, (inputs, labels) tuples or mappings of model inputs.
        layers: names of ``nn.Linear`` / ``nn.Conv2d`` submodules (``dict(model.named_modules())`` keys).
        centre: centre the statistics (the paper's choice for BatchNorm networks).
        forward: ``forward(model, batch)``; defaults to :func:`default_forward`.
        max_batches: stop after this many batches.

    Returns:
        name -> :class:`LayerFidelity` (its ``singleton_scores()``, ``fidelity(keep)``, ``compensation(keep)``).

    Example:
        >>> stats = layer_fidelity(model, loader, ["net.2"])
        >>> stats["net.2"].singleton_scores().shape          # (outputs, inputs)
    """
    found = _layers(model, layers)
    check_flags(centre=centre)
    if max_batches is not None:
        check_positive_int(max_batches, "max_batches")
    run = default_forward if forward is None else forward
    sums = {name: _Sums() for name in found}

    def hook(name: str) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def accumulate(layer: nn.Module, inputs: tuple[Any, ...], _output: Any) -> None:
            patches = _patches(found[name], inputs[0].detach()).double()
            flat = patches.reshape(-1, patches.shape[-1])
            entry = sums[name]
            entry.moment = flat.T @ flat if entry.moment is None else entry.moment + flat.T @ flat
            entry.total = flat.sum(0) if entry.total is None else entry.total + flat.sum(0)
            entry.examples += patches.shape[0]
            entry.positions = patches.shape[1]

        return accumulate

    handles = [layer.register_forward_hook(hook(name)) for name, layer in found.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for index, batch in enumerate(data):
                if max_batches is not None and index >= max_batches:
                    break
                run(model, batch)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {name: _statistics(name, found[name], sums[name], centre) for name in found}


@dataclass
class _Sums:
    """Running sums of one layer's patches: sum of outer products, sum, examples, positions per example."""

    moment: Tensor | None = None
    total: Tensor | None = None
    examples: int = 0
    positions: int = 0


def _statistics(name: str, layer: Layer, sums: _Sums, centre: bool) -> LayerFidelity:
    if sums.moment is None or sums.total is None:
        raise ValueError(f"`data` gave no batch that reached layer {name!r}: no statistics to compute")
    check_finite(sums.moment, f"data (the inputs of layer {name!r})")
    moment = sums.moment / sums.examples
    mean = sums.total / (sums.examples * sums.positions)
    if centre:
        moment = moment - sums.positions * torch.outer(mean, mean)
    return LayerFidelity(name, layer, moment, mean, float(sums.positions), sums.examples, centre)


def _check_fraction(value: object, name: str, high_inclusive: bool = False) -> None:
    check_number_in_range(value, name, 0.0, 1.0)
    if value == 0 or (value == 1 and not high_inclusive):
        interval = "(0, 1]" if high_inclusive else "(0, 1)"
        raise ValueError(f"`{name}` must lie in {interval}, got {value}")


def _apply(stats: LayerFidelity, delta: Tensor) -> None:
    """Rescale the weights by delta* (0: pruned), and (centred, with a bias) move the removed mean into the bias."""
    layer = stats.layer
    with torch.no_grad():
        if stats.centred and layer.bias is not None:
            shift = ((1.0 - delta) * stats.mean_components()).sum(1)
            layer.bias.add_(shift.to(layer.bias))
        scale = delta.to(layer.weight).reshape(*delta.shape, *([1] * (layer.weight.dim() - 2)))
        layer.weight.mul_(scale)


def modhifi_prune(
    model: nn.Module,
    data: Iterable[Any],
    layers: Sequence[str],
    *,
    sparsity: float,
    step_fraction: float = 0.1,
    ridge: float = 1e-4,
    centre: bool = False,
    forward: Forward | None = None,
    max_batches: int | None = None,
) -> dict[str, Tensor]:
    """ModHiFi-P (Algorithm 1, arXiv 2511.19566): remove a share of each layer's inputs, compensating the rest.

    Layers are pruned one after the other (statistics of a layer are collected after the layers before it in
    `layers` are pruned). Each step removes ``ceil(step_fraction * remaining)`` inputs with the lowest
    ``max_c s_ci`` and rescales the kept weights by ``delta*``; the weights are changed in place. Removing input i
    of a layer makes output i of the layer feeding it dead: drop that channel to shrink the network.

    Args:
        model: the network (changed in place).
        data: calibration batches, as for :func:`layer_fidelity`.
        layers: names of the ``nn.Linear`` / ``nn.Conv2d`` layers whose inputs are pruned.
        sparsity: share of each layer's inputs to remove, in (0, 1).
        step_fraction: share of the remaining inputs removed per step, in (0, 1] (paper: 0.01-0.2).
        ridge: ridge on Q before solving for delta* (paper: 1e-4), >= 0.
        centre, forward, max_batches: as for :func:`layer_fidelity`.

    Returns:
        name -> (inputs,) bool mask of the kept inputs.

    Example:
        >>> keep = modhifi_prune(model, calibration_loader, ["net.2"], sparsity=0.5)
        >>> keep["net.2"].float().mean()    # 0.5
    """
    _check_fraction(sparsity, "sparsity")
    _check_fraction(step_fraction, "step_fraction", high_inclusive=True)
    check_number_in_range(ridge, "ridge", 0.0, math.inf)
    _layers(model, layers)
    kept: dict[str, Tensor] = {}
    for name in layers:
        stats = layer_fidelity(model, data, [name], centre=centre, forward=forward, max_batches=max_batches)[name]
        inputs = stats.layer.weight.shape[1]
        keep = torch.ones(inputs, dtype=torch.bool, device=stats.input_moment.device)
        to_remove = round(sparsity * inputs)
        while inputs - int(keep.sum()) < to_remove:
            remaining = int(keep.sum())
            count = min(math.ceil(step_fraction * remaining), to_remove - (inputs - remaining))
            similarity = stats.similarity
            scores = singleton_fidelity(similarity).amax(0).masked_fill(~keep, math.inf)
            keep[scores.argsort()[:count]] = False
            _apply(stats, optimal_compensation(similarity, keep, ridge))
        kept[name] = keep
    return kept


def modhifi_unlearn(
    model: nn.Module,
    forget_data: Iterable[Any],
    layers: Sequence[str],
    *,
    fraction: float,
    mode: Literal["zero", "negate"] = "zero",
    centre: bool = False,
    forward: Forward | None = None,
    max_batches: int | None = None,
) -> dict[str, Tensor]:
    """ModHiFi-U (Algorithm 1, arXiv 2511.19566): zero the weights most faithful to the forget class's outputs.

    The singleton scores ``s_ci`` are computed on forget-class data only; the top ``fraction`` of each layer's
    (output, input) pairs are zeroed (``mode="zero"``) or negated (``"negate"``, the paper's Algorithm 2 for
    LayerNorm / residual networks). No data of the other classes and no gradient step is needed.

    Args:
        model: the network (changed in place).
        forget_data: batches of the class to forget, as for :func:`layer_fidelity`.
        layers: names of the ``nn.Linear`` / ``nn.Conv2d`` layers to edit.
        fraction: share of each layer's (output, input) pairs to edit, in (0, 1).
        mode: "zero" or "negate".
        centre, forward, max_batches: as for :func:`layer_fidelity`.

    Returns:
        name -> (outputs, inputs) bool mask of the edited pairs.
    """
    _check_fraction(fraction, "fraction")
    check_choice(mode, "mode", ("zero", "negate"))
    stats = layer_fidelity(model, forget_data, layers, centre=centre, forward=forward, max_batches=max_batches)
    edited: dict[str, Tensor] = {}
    for name, layer_stats in stats.items():
        scores = layer_stats.singleton_scores()
        chosen = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
        chosen[scores.flatten().argsort(descending=True)[: round(fraction * scores.numel())]] = True
        chosen = chosen.reshape(scores.shape)
        weight = layer_stats.layer.weight
        factor = torch.where(chosen, 0.0 if mode == "zero" else -1.0, 1.0).to(weight)
        with torch.no_grad():
            weight.mul_(factor.reshape(*factor.shape, *([1] * (weight.dim() - 2))))
        edited[name] = chosen
    return edited
