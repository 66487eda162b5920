"""Adversarial robustness under L-infinity attacks: the probability-margin attack (PMA) and a PGD-CE baseline.

Xie, Zheng, Huang, Ye, Ma, "Towards Million-Scale Adversarial Robustness Evaluation With Stronger Individual
Attacks" (arXiv 2411.15210). PMA ascends the probability margin ``max_{j != y} p_j - p_y`` with the
Margin-Decomposition schedule of the official code: every restart runs two rounds, each from a uniform random start
in the epsilon-ball, of K sign-gradient steps ``x <- Proj(x + a_i sign(grad))``. The objective at step i is

- i = 0: p_y (as in the official code: a first full step *towards* the true class, a second random start);
- 1 <= i < K//2: -p_y in round 0, max_{j != y} p_j in round 1 (the margin's two halves, one per round);
- i >= K//2: max_{j != y} p_j - p_y (the probability margin);

with cosine step sizes from 2 epsilon, restarted at the change point:
``a_i = epsilon (1 + cos(pi (i - 1) / (K - K//2)))`` for i < K//2 and
``a_i = epsilon (1 + cos(pi (i - K//2 - 1) / (K - K//2)))`` after. With K <= 2 every step size is 0 (the attack would
only try its random starts), so PMA needs K >= 3 steps (K >= 4 to have both phases of both rounds).
Proj clips to the epsilon-ball around the clean input and to the valid input box (`bounds`; None for unbounded
inputs such as embeddings). A sample counts as broken as soon as any iterate is misclassified; it is then frozen
(early stop), and its misclassified iterate is returned. PMA+ (PMA followed by APGD-T) is not included.

The baseline is plain PGD on the cross-entropy (Madry et al., arXiv 1706.06083): one random start per restart and a
constant step 2.5 epsilon / K. PMA's restart runs two rounds, so at the same gradient budget PGD gets twice the
restarts (`pma_robust_accuracy(attack="pgd")` does this).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from hf_margin._outputs import output_logits
from hf_margin._precision import at_least_float32
from hf_margin._validation import (
    check_choice,
    check_class_labels,
    check_finite,
    check_integers,
    check_numbers,
    check_positive_int,
)
from hf_margin.functional.probability_margin import class_probabilities

Bounds = tuple[float, float] | None
Objective = Callable[[Tensor, Tensor, int, int], Tensor]
ATTACKS = ("pma", "pgd")


@dataclass(frozen=True)
class RobustnessResult:
    """Accuracy on the clean inputs and under the attack, on the same `samples` rows."""

    attack: str
    epsilon: float
    samples: int
    clean_accuracy: float
    robust_accuracy: float


def logits_of(model: Callable[[Tensor], Any], inputs: Tensor) -> Tensor:
    """`model(inputs)` as a (batch, classes) tensor: a tensor, a ModelOutput / mapping with "logits", or `.logits`."""
    output = output_logits(model(inputs))
    if output.dim() != 2 or output.shape[0] != inputs.shape[0]:
        raise TypeError(
            f"`model` must return logits of shape ({inputs.shape[0]}, classes) (a tensor, or an output "
            f"with .logits / ['logits']), got {tuple(output.shape)}"
        )
    return output


def project_linf(inputs: Tensor, clean: Tensor, epsilon: float, bounds: Bounds = (0.0, 1.0)) -> Tensor:
    """Closest point (per coordinate) of the epsilon-ball around `clean` intersected with the `bounds` box.

    `inputs` and `clean` are finite tensors of one shape, `epsilon` a finite number >= 0.
    """
    for name, tensor in (("inputs", inputs), ("clean", clean)):
        if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
            got = tensor.dtype if isinstance(tensor, Tensor) else type(tensor).__name__
            raise TypeError(f"`{name}` must be a floating-point tensor, got {got}")
        check_finite(tensor, name)
    if inputs.shape != clean.shape:
        raise ValueError(
            f"`inputs` and `clean` must have one shape, got {tuple(inputs.shape)} and {tuple(clean.shape)}"
        )
    _check_radius(epsilon)
    _check_bounds(bounds)
    return _project(inputs, clean, epsilon, bounds)


def _project(inputs: Tensor, clean: Tensor, epsilon: float, bounds: Bounds) -> Tensor:
    """`project_linf` without the checks (inside the attack loop, on checked tensors)."""
    projected = torch.clamp(inputs, clean - epsilon, clean + epsilon)
    return projected if bounds is None else projected.clamp(bounds[0], bounds[1])


def _check_radius(epsilon: object) -> None:
    check_numbers(epsilon=epsilon)
    if not 0 <= epsilon < math.inf:  # type: ignore[operator]
        raise ValueError(f"`epsilon` must be a finite number >= 0 (an L-infinity radius), got {epsilon}")


def _check_settings(epsilon: object, steps: object, restarts: object) -> None:
    """Raise unless the attack's radius and budget are usable (before any is used), naming the argument."""
    _check_radius(epsilon)
    check_integers(steps=steps, restarts=restarts)
    check_positive_int(steps, "steps")
    check_positive_int(restarts, "restarts")


def _check_bounds(bounds: Bounds) -> None:
    if bounds is not None and (
        not isinstance(bounds, tuple | list)
        or len(bounds) != 2
        or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
        or not bounds[0] < bounds[1]
    ):
        raise ValueError(f"`bounds` must be None or (low, high) with low < high, got {bounds}")


def pma_step_sizes(epsilon: float, steps: int) -> list[float]:
    """PMA's cosine step sizes a_0..a_{K-1}: from 2 epsilon down, restarted at the change point K//2 (K >= 3)."""
    _check_radius(epsilon)
    check_integers(steps=steps)
    check_positive_int(steps, "steps")
    if steps < 3:
        raise ValueError(
            f"`steps` must be >= 3 for PMA (with 1 or 2 steps every cosine step size is 0 and only the "
            f"random starts are tried), got {steps}"
        )
    change, length = steps // 2, steps - steps // 2
    return [
        epsilon * (1 + math.cos(math.pi * ((i - 1) if i < change else (i - change - 1)) / length)) for i in range(steps)
    ]


def pma_objective(
    logits: Tensor, labels: Tensor, round_index: int, step: int, steps: int, *, validate: bool = True
) -> Tensor:
    """The per-sample quantity PMA ascends at `step` of round `round_index` (0 or 1) of a K = `steps` run.

    `validate=False` skips the checks of `logits` and `labels` (an attack checks them once, not at every step).
    """
    true, runner_up = class_probabilities(logits, labels, validate=validate)
    if step == 0:
        return true
    if step < steps // 2:
        return -true if round_index == 0 else runner_up
    return runner_up - true


def pma_attack(
    model: Callable[[Tensor], Any],
    inputs: Tensor,
    labels: Tensor,
    epsilon: float,
    steps: int = 100,
    restarts: int = 1,
    bounds: Bounds = (0.0, 1.0),
    seed: int = 0,
) -> Tensor:
    """Probability-margin attack (PMA, arXiv 2411.15210): adversarial inputs within `epsilon` (L-infinity).

    Maximises ``max_{j != y} p_j - p_y`` with the two-round, two-phase, cosine-step schedule (module docstring).
    Put the model in eval mode first (a train-mode BatchNorm or dropout mixes or randomises the samples).

    Args:
        model: a callable on `inputs` returning logits, a ModelOutput with `.logits` (any transformers image
            classifier takes `pixel_values` as its first argument) or a mapping with "logits".
        inputs: (batch, ...) clean inputs, within `bounds`.
        labels: (batch,) true class indices.
        epsilon: L-infinity radius, >= 0 (8/255 or 4/255 for images in [0, 1] in the paper).
        steps: K >= 3, steps per round (100 in the paper).
        restarts: restarts of the two rounds (the official `main.py` defaults to 4); samples broken earlier stay
            broken, so more restarts never break fewer samples.
        bounds: the valid input box (low, high), or None for unbounded inputs.
        seed: seed of the random starts (a generator on the inputs' device).

    Returns:
        Adversarial inputs: a misclassified point where one was found (the clean input for clean errors), else the
        last iterate.

    Example:
        >>> adversarial = pma_attack(model.eval(), pixel_values, labels, epsilon=8 / 255)
    """
    return _pma(model, inputs, labels, epsilon, steps, restarts, bounds, seed)[0]


def pgd_attack(
    model: Callable[[Tensor], Any],
    inputs: Tensor,
    labels: Tensor,
    epsilon: float,
    steps: int = 100,
    restarts: int = 1,
    bounds: Bounds = (0.0, 1.0),
    step_size: float | None = None,
    seed: int = 0,
) -> Tensor:
    """PGD on the cross-entropy (Madry et al., arXiv 1706.06083): the baseline to compare PMA with.

    ``x <- Proj(x + a sign(grad CE))`` from a uniform random start in the epsilon-ball, `restarts` times, with the
    same early stop and projection as `pma_attack`. Arguments as `pma_attack`; `step_size` defaults to
    2.5 epsilon / steps. For PMA's gradient budget pass twice PMA's restarts.

    Example:
        >>> adversarial = pgd_attack(model.eval(), pixel_values, labels, epsilon=8 / 255, restarts=2)
    """
    return _pgd(model, inputs, labels, epsilon, steps, restarts, bounds, step_size, seed)[0]


def _pma(
    model: Callable[[Tensor], Any],
    inputs: Tensor,
    labels: Tensor,
    epsilon: float,
    steps: int,
    restarts: int,
    bounds: Bounds,
    seed: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """`pma_attack`'s (adversarial inputs, still-robust mask, clean-correct mask)."""
    _check_settings(epsilon, steps, restarts)
    sizes = pma_step_sizes(epsilon, steps)

    def objective(logits: Tensor, targets: Tensor, round_index: int, step: int) -> Tensor:
        # the first call checks the logits and labels; later steps reuse them (no device sync per step)
        return pma_objective(logits, targets, round_index % 2, step, steps, validate=round_index == step == 0)

    return _attack(model, inputs, labels, epsilon, steps, 2 * restarts, bounds, objective, sizes, seed)


def _pgd(
    model: Callable[[Tensor], Any],
    inputs: Tensor,
    labels: Tensor,
    epsilon: float,
    steps: int,
    restarts: int,
    bounds: Bounds,
    step_size: float | None,
    seed: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """`pgd_attack`'s (adversarial inputs, still-robust mask, clean-correct mask)."""
    _check_settings(epsilon, steps, restarts)
    if step_size is not None:
        check_numbers(step_size=step_size)
    size = 2.5 * epsilon / steps if step_size is None else step_size
    if not 0 <= size < math.inf:
        raise ValueError(f"`step_size` must be a finite number >= 0, got {step_size}")

    def objective(logits: Tensor, targets: Tensor, round_index: int, step: int) -> Tensor:
        return F.cross_entropy(at_least_float32(logits), targets, reduction="none")

    return _attack(model, inputs, labels, epsilon, steps, restarts, bounds, objective, [size] * steps, seed)


def _attack(
    model: Callable[[Tensor], Any],
    inputs: Tensor,
    labels: Tensor,
    epsilon: float,
    steps: int,
    rounds: int,
    bounds: Bounds,
    objective: Objective,
    step_sizes: list[float],
    seed: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """(adversarial inputs, still-robust mask, clean-correct mask): `rounds` random starts of `steps` sign-gradient
    ascent steps."""
    _check_attack(inputs, labels, bounds)
    with torch.no_grad():
        clean_logits = logits_of(model, inputs)
    # a diverged model's NaN logits would still give an argmax, hence a believable accuracy
    check_finite(clean_logits, "the logits of `model`")
    check_class_labels(labels, inputs.shape[0], clean_logits.shape[1])
    clean = clean_logits.argmax(1) == labels
    robust = clean.clone()
    adversarial, current = inputs.detach().clone(), inputs.detach().clone()
    generator = torch.Generator(device=inputs.device).manual_seed(seed)
    for round_index in range(rounds):
        # drawn for the whole batch, so restart r sees the same start whatever broke before (restarts only add)
        start = torch.rand(inputs.shape, generator=generator, device=inputs.device, dtype=inputs.dtype)
        current = _project(inputs + (2 * start - 1) * epsilon, inputs, epsilon, bounds)
        for step in range(steps + 1):
            active = robust.nonzero().squeeze(1)
            if active.numel() == 0:
                return adversarial, robust, clean
            point = current[active].requires_grad_(True)
            logits = logits_of(model, point)
            broken = logits.argmax(1) != labels[active]
            adversarial[active[broken]] = point.detach()[broken]
            robust[active[broken]] = False
            if step == steps:
                break
            value = objective(logits, labels[active], round_index, step).masked_fill(broken, 0.0).sum()
            (gradient,) = torch.autograd.grad(value, point)
            moved = point.detach() + step_sizes[step] * gradient.sign()
            current[active] = _project(moved, inputs[active], epsilon, bounds)
    adversarial[robust] = current[robust]
    return adversarial, robust, clean


def _check_attack(inputs: Tensor, labels: Tensor, bounds: Bounds) -> None:
    """Raise unless the attack's inputs, labels and bounds are usable; each error names the argument (the radius
    and budget are checked by `_check_settings` before the step sizes are computed)."""
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point() or inputs.dim() < 1 or len(inputs) == 0:
        got = (
            f"shape {tuple(inputs.shape)}, dtype {inputs.dtype}"
            if isinstance(inputs, Tensor)
            else type(inputs).__name__
        )
        raise ValueError(f"`inputs` must be a non-empty floating-point tensor of shape (batch, ...), got {got}")
    check_finite(inputs, "inputs")
    if not isinstance(labels, Tensor) or tuple(labels.shape) != (inputs.shape[0],):
        found = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"`labels` must be a tensor of shape ({inputs.shape[0]},) (one per input), got {found}")
    _check_bounds(bounds)
    if bounds is not None:
        low, high = float(inputs.min()), float(inputs.max())
        if low < bounds[0] or high > bounds[1]:
            raise ValueError(
                f"`inputs` must lie within bounds {tuple(bounds)}, got values in [{low}, {high}] "
                "(pass bounds=None for unbounded inputs such as embeddings)"
            )


def pma_robust_accuracy(
    model: Callable[[Tensor], Any],
    data: Any,
    epsilon: float,
    steps: int = 100,
    restarts: int = 1,
    attack: str = "pma",
    bounds: Bounds = (0.0, 1.0),
    batch_size: int = 128,
    max_samples: int | None = None,
    input_key: str = "pixel_values",
    label_key: str = "labels",
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> RobustnessResult:
    """Clean and robust accuracy of `model` under PMA (or the PGD-CE baseline at the same gradient budget).

    Works for any transformers image classifier (`model(pixel_values).logits`) and for any callable on tensors that
    returns logits, e.g. a classification head on text embeddings (then pass `bounds=None`). An `nn.Module` is put in
    eval mode for the run and restored after.

    Args:
        model: the classifier (see `pma_attack`).
        data: an (inputs, labels) pair of tensors; an iterable of batches (a DataLoader) that are mappings with
            `input_key` / `label_key` or (inputs, labels) pairs; or a map-style dataset of such rows (e.g. a
            `datasets.Dataset` in torch format), batched here by `batch_size`.
        epsilon: L-infinity radius, >= 0.
        steps: steps per round (PMA, >= 3) or per restart (PGD).
        restarts: PMA restarts; "pgd" runs 2 x `restarts` starts, the same number of gradient steps.
        attack: "pma" or "pgd" (cross-entropy PGD baseline).
        bounds: the valid input box, or None for unbounded inputs.
        batch_size: rows per attacked batch (for tensor pairs and datasets).
        max_samples: evaluate at most this many rows (the budget); None for all.
        input_key, label_key: the batch keys of the inputs and labels for mapping batches.
        device: where to attack (defaults to the model's parameters' device, else the data's).
        seed: seed of the random starts.
        progress: show a tqdm progress bar.

    Example:
        >>> pma_robust_accuracy(vit, test_set.with_format("torch"), epsilon=4 / 255, max_samples=1000)
        RobustnessResult(attack='pma', epsilon=0.0156..., samples=1000, clean_accuracy=..., robust_accuracy=...)
    """
    check_choice(attack, "attack", ATTACKS)
    _check_settings(epsilon, steps, restarts)
    check_integers(batch_size=batch_size)
    check_positive_int(batch_size, "batch_size")
    if max_samples is not None:
        check_positive_int(max_samples, "max_samples")
    if device is None and isinstance(model, nn.Module):
        device = next((p.device for p in model.parameters()), None)
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    seen = clean = robust = 0
    bar = tqdm(total=max_samples, desc=f"{attack} eps={epsilon:.4g}", unit="sample", disable=not progress)
    try:
        for inputs, labels in _batches(data, batch_size, input_key, label_key):
            if max_samples is not None:
                inputs, labels = inputs[: max_samples - seen], labels[: max_samples - seen]
            inputs, labels = inputs.to(device), labels.to(device)
            if attack == "pma":
                _, still, correct = _pma(model, inputs, labels, epsilon, steps, restarts, bounds, seed)
            else:
                _, still, correct = _pgd(model, inputs, labels, epsilon, steps, 2 * restarts, bounds, None, seed)
            clean += int(correct.sum())
            robust += int(still.sum())
            seen += len(labels)
            bar.update(len(labels))
            if max_samples is not None and seen >= max_samples:
                break
    finally:
        bar.close()
        if was_training and isinstance(model, nn.Module):
            model.train()
    if seen == 0:
        raise ValueError("`data` yielded no samples")
    return RobustnessResult(attack, float(epsilon), seen, clean / seen, robust / seen)


def _batches(data: Any, batch_size: int, input_key: str, label_key: str) -> Iterator[tuple[Tensor, Tensor]]:
    """(inputs, labels) batches of a tensor pair, an iterable of batches, or a map-style dataset."""
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(part, Tensor) for part in data):
        for begin in range(0, len(data[0]), batch_size):
            yield data[0][begin : begin + batch_size], data[1][begin : begin + batch_size]
        return
    batches: Iterable[Any] = data
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, tuple | list):
        batches = torch.utils.data.DataLoader(data, batch_size=batch_size)
    for batch in batches:
        if isinstance(batch, Mapping):
            if input_key not in batch or label_key not in batch:
                raise ValueError(
                    f"a batch of `data` has keys {sorted(batch)}; expected `input_key`={input_key!r} "
                    f"and `label_key`={label_key!r}"
                )
            yield torch.as_tensor(batch[input_key]), torch.as_tensor(batch[label_key])
        else:
            inputs, labels = batch
            yield torch.as_tensor(inputs), torch.as_tensor(labels)
