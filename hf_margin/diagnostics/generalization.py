"""Margin-based generalization measures: the output-margin and norm-over-margin family of Jiang et al.

Jiang, Neyshabur, Mobahi, Krishnan, Bengio, "Fantastic Generalization Measures and Where to Find Them"
(ICLR 2020, arXiv 1912.02178); equation numbers (#NN) follow the paper, as in the PyTorch re-implementation of
Dziugaite et al. 2020. With margins ``f(x)_y - max_{j != y} f(x)_j`` on m training examples,

    gamma = |k-th smallest margin|, k = m // 10   (the 10th-percentile output margin)

and W_i (i = 1..d) the network's weight matrices (every parameter with >= 2 dims, reshaped to (out, -1); biases
and normalisation parameters excluded), W_i^0 the same at initialisation:

    inverse_margin (#22)                = 1 / gamma^2
    log_prod_of_spec (#32)              = sum_i log ||W_i||_2^2
    log_prod_of_spec_over_margin (#31)  = sum_i log ||W_i||_2^2 - 2 log gamma
    log_sum_of_spec_over_margin (#34)   = log d + (sum_i log ||W_i||_2^2 - 2 log gamma) / d
    log_spec_orig_main (#30)            = #31 + log sum_i ||W_i||_F^2 / ||W_i||_2^2
    log_spec_init_main (#29)            = #31 + log sum_i ||W_i - W_i^0||_F^2 / ||W_i||_2^2
    fro_over_spec (#33)                 = sum_i ||W_i||_F^2 / ||W_i||_2^2
    log_prod_of_fro_over_margin (#36)   = sum_i log ||W_i||_F^2 - 2 log gamma
    log_sum_of_fro_over_margin (#38)    = log d + (sum_i log ||W_i||_F^2 - 2 log gamma) / d
    param_norm (#42)                    = sum_i ||W_i||_F^2
    fro_dist (#40), dist_spec_init (#41) = sum_i ||W_i - W_i^0||_F^2, sum_i ||W_i - W_i^0||_2^2
    path_norm (#44)                     = sum of the outputs of the network with every parameter squared, on an
                                          all-ones input
    path_norm_over_margin (#43)         = path_norm / gamma^2

With ``normalize=True`` (the re-implementation's final step) the ``log_*`` values become ``(value - log m) / 2``
and the others ``sqrt(value / m)``.

Choices and omissions: the 10th percentile needs m >= 10 in the re-implementation (k = m // 10); here
k = max(1, m // 10)
so smaller samples use their smallest margin. BatchNorm is *not* folded into the preceding layer (the
re-implementation does this); models with BatchNorm get the unfolded weights. Spectral norms are exact SVD norms of
the reshaped matrix (for convolutions this is the re-implementation's "approximate" variant; the FFT-exact one is
left out). gamma is floored at 1e-12 (and the distance sum of #29 at 1e-24) so that a zero margin (or no move from
initialisation) gives huge, finite values. The PAC-Bayes and sharpness measures (#48-#61) are left out: they need
weight-noise searches, not a margin.

These are **correlational diagnostics, not guarantees**: Gastpar, Nachum, Shafer, Weinberger, "Fantastic
Generalization Measures are Nowhere to be Found" (ICLR 2024) prove that bounds that depend only
on the training set and the learned hypothesis, margin bounds among them, cannot be uniformly tight in the
overparameterised regime.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from hf_margin._validation import check_class_labels, check_embeddings, check_finite, check_positive_int

MARGIN_MEASURES = (
    "inverse_margin",
    "log_prod_of_spec_over_margin",
    "log_sum_of_spec_over_margin",
    "log_spec_orig_main",
    "log_prod_of_fro_over_margin",
    "log_sum_of_fro_over_margin",
)
MARGIN_FLOOR = 1e-12
NORM_MEASURES = ("log_prod_of_spec", "fro_over_spec", "param_norm")
INIT_MEASURES = ("log_spec_init_main", "fro_dist", "dist_spec_init")
PATH_MEASURES = ("path_norm", "path_norm_over_margin")


def output_margins(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-example output margins ``f(x)_y - max_{j != y} f(x)_j`` (negative when misclassified).

    Args:
        logits: (m, classes >= 2) network outputs.
        labels: (m,) true class indices.

    Example:
        >>> output_margins(torch.tensor([[3.0, 1.0, 0.0]]), torch.tensor([0]))
        tensor([2.])
    """
    check_embeddings(logits, name="logits")
    if logits.shape[1] < 2:
        raise ValueError(f"`logits` must have shape (m, classes) with classes >= 2, got {tuple(logits.shape)}")
    check_class_labels(labels, logits.shape[0], logits.shape[1])
    true = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    others = logits.scatter(1, labels.unsqueeze(1), float("-inf"))
    return true - others.amax(dim=1)


def margin_percentile(logits: Tensor, labels: Tensor) -> Tensor:
    """Jiang et al.'s margin gamma: |k-th smallest output margin| with k = max(1, m // 10) (10th percentile).

    Example:
        >>> margin_percentile(logits, labels)   # a 0-dim tensor, differentiable in `logits`
    """
    margins = output_margins(logits, labels)
    k = max(1, margins.shape[0] // 10)
    return margins.sort().values[k - 1].abs()


def weight_matrices(model: nn.Module) -> dict[str, Tensor]:
    """The W_i of the measures: every parameter with >= 2 dims, reshaped to (out, -1) (biases and norms excluded)."""
    return {name: p.reshape(p.shape[0], -1) for name, p in model.named_parameters() if p.dim() >= 2}


def path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> Tensor:
    """Path-norm (#44): the summed outputs of `model` with every parameter squared, on one all-ones input.

    For a bias-free linear layer it is sum_ij W_ij^2. The model runs in eval mode (restored after) through
    ``torch.func.functional_call``, so its parameters are left untouched; the output may be a tensor, a mapping or
    a ``ModelOutput`` holding ``logits``.

    Args:
        model: the network.
        input_shape: the shape of one input example, without the batch dimension.
    """
    if not input_shape or any(not isinstance(s, int) or s < 1 for s in input_shape):
        raise ValueError(f"`input_shape` must be a non-empty tuple of positive ints, got {input_shape!r}")
    squared = {name: p.square() for name, p in model.named_parameters()}
    first = next(iter(squared.values()), None)
    if first is None:
        raise ValueError("`model` has no parameters to take the path-norm of")
    was_training = model.training
    model.eval()
    try:
        ones = torch.ones((1, *input_shape), dtype=first.dtype, device=first.device)
        output = torch.func.functional_call(model, squared, (ones,))
    finally:
        model.train(was_training)
    return logits_of(output).sum()


def logits_of(output: object) -> Tensor:
    """The logits of a model output: the tensor itself, or its ``logits`` entry/attribute."""
    if isinstance(output, Tensor):
        return output
    logits = output["logits"] if isinstance(output, Mapping) else getattr(output, "logits", None)
    if not isinstance(logits, Tensor):
        raise TypeError(f"the model output must be a Tensor or hold `logits`, got {type(output).__name__}")
    return logits


def _norm_terms(weights: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """(||W_i||_2^2, ||W_i||_F^2) of every matrix, as two (d,) tensors in float32 or wider."""
    matrices = [w.double() if w.dtype == torch.float64 else w.float() for w in weights.values()]
    spectral = torch.stack([torch.linalg.matrix_norm(w, ord=2) ** 2 for w in matrices])
    frobenius = torch.stack([w.square().sum() for w in matrices])
    return spectral, frobenius


def generalization_measures(
    model: nn.Module,
    logits: Tensor,
    labels: Tensor,
    init_weights: Mapping[str, Tensor] | None = None,
    input_shape: tuple[int, ...] | None = None,
    normalize: bool = False,
    num_examples: int | None = None,
) -> dict[str, float]:
    """Jiang et al.'s output-margin and norm measures of `model` from its `logits` on training examples.

    Always: ``margin`` (gamma), ``inverse_margin``, the spectral/Frobenius norms and norms over margin (see the
    module docstring). With `init_weights` also ``log_spec_init_main``, ``fro_dist``, ``dist_spec_init``; with
    `input_shape` also ``path_norm`` and ``path_norm_over_margin``.

    Args:
        model: the trained network (its >= 2-dim parameters are the W_i).
        logits: (m, classes) its outputs on a fixed sample of the training set.
        labels: (m,) the training labels of that sample.
        init_weights: W_i^0 by the same names as ``weight_matrices(model)`` (e.g. taken before training).
        input_shape: the shape of one input, for the path-norm.
        normalize: apply the re-implementation's size normalisation ((v - log m) / 2 for log_*, sqrt(v / m) else).
        num_examples: m for the normalisation (default: the number of rows of `logits`).

    Example:
        >>> init = {k: w.detach().clone() for k, w in weight_matrices(model).items()}
        >>> ...  # train
        >>> generalization_measures(model, model(x_train), y_train, init, input_shape=(64,))
    """
    if num_examples is not None:
        check_positive_int(num_examples, "num_examples")
    check_embeddings(logits, name="logits")
    check_finite(logits, "logits")  # a diverged model gets an error, not NaN measures
    # a zero margin would make every over-margin measure infinite: floor it so that the values stay finite (huge)
    gamma = margin_percentile(logits.detach(), labels).double().clamp_min(MARGIN_FLOOR)
    log_gamma2 = 2 * gamma.log()
    with torch.no_grad():
        weights = weight_matrices(model)
        if not weights:
            raise ValueError("`model` has no weight matrices (parameters with >= 2 dims)")
        for name, weight in weights.items():
            check_finite(weight, f"model.{name}")
        spectral, frobenius = (t.double() for t in _norm_terms(weights))
        depth = len(weights)
        log_spec, log_fro = spectral.log().sum(), frobenius.log().sum()
        values = {
            "margin": gamma,
            "inverse_margin": 1 / gamma**2,
            "log_prod_of_spec": log_spec,
            "log_prod_of_spec_over_margin": log_spec - log_gamma2,
            "log_sum_of_spec_over_margin": math.log(depth) + (log_spec - log_gamma2) / depth,
            "log_spec_orig_main": log_spec - log_gamma2 + (frobenius / spectral).sum().log(),
            "fro_over_spec": (frobenius / spectral).sum(),
            "log_prod_of_fro_over_margin": log_fro - log_gamma2,
            "log_sum_of_fro_over_margin": math.log(depth) + (log_fro - log_gamma2) / depth,
            "param_norm": frobenius.sum(),
        }
        if init_weights is not None:
            missing = sorted(set(weights) - set(init_weights))
            if missing:
                raise ValueError(f"`init_weights` must hold every weight matrix of `model`; missing {missing}")
            for name in weights:
                check_finite(init_weights[name], f"init_weights['{name}']")
            moved = {name: w - init_weights[name].to(w).reshape(w.shape) for name, w in weights.items()}
            moved_spectral, moved_frobenius = (t.double() for t in _norm_terms(moved))
            # floored like gamma^2: at initialisation the distance is 0 and its log would be -inf
            distance = (moved_frobenius / spectral).sum().clamp_min(MARGIN_FLOOR**2)
            values["log_spec_init_main"] = log_spec - log_gamma2 + distance.log()
            values["fro_dist"] = moved_frobenius.sum()
            values["dist_spec_init"] = moved_spectral.sum()
        if input_shape is not None:
            values["path_norm"] = path_norm(model, input_shape).double()
            values["path_norm_over_margin"] = values["path_norm"] / gamma**2
    m = logits.shape[0] if num_examples is None else num_examples
    if normalize:
        values = {
            k: v if k == "margin" else (v - math.log(m)) / 2 if k.startswith("log_") else (v / m).sqrt()
            for k, v in values.items()
        }
    return {k: float(v) for k, v in values.items()}
