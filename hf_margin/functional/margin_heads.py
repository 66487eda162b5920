"""Target-logit margins of the face-recognition heads, as stateless functions.

Every head scores an embedding against class centres by cosine, changes only the target class's cosine,
scales all logits by ``s`` and applies cross-entropy. The functions here compute the cosine matrix and the
modified target cosine; `hf_margin.heads` wraps them as modules with class centres.

Papers:
    ArcFace: Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", arXiv 1801.07698.
    CosFace: Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", arXiv 1801.09414.
    ElasticFace: Boutros et al., "ElasticFace: Elastic Margin Loss for Deep Face Recognition", arXiv 2109.09416.
    AdaFace: Kim, Jain, Liu, "AdaFace: Quality Adaptive Margin for Face Recognition", arXiv 2204.00964.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32, full_precision
from hf_margin._validation import (
    check_choice,
    check_class_labels,
    check_embeddings,
    check_flags,
    check_number_in_range,
    check_numbers,
    check_positive,
)
from hf_margin.functional._nonfinite import nan_where_infinite
from hf_margin.functional.cosine_softmax import (
    check_class_centres,
    check_margin_inputs,
    check_reduction,
    check_scale,
    margin_cross_entropy_of_checked,
    normalized_linear,
)

Boundary = Literal["threshold", "easy_margin", "none"]
Gradient = Literal["exact", "straight_through"]
PlusAssignment = Literal["official_gather", "rank"]
Reduction = Literal["mean", "sum", "none"]

BOUNDARIES: tuple[str, ...] = ("threshold", "easy_margin", "none")
GRADIENTS: tuple[str, ...] = ("exact", "straight_through")
PLUS_ASSIGNMENTS: tuple[str, ...] = ("official_gather", "rank")

# Floor under 1 - cos^2 before the square root: sin(theta) stays finite and its gradient is zero, not NaN,
# when a cosine is exactly +-1.
_SIN_SQUARED_FLOOR = 1e-30


# ---------------------------------------------------------------- argument checks, shared with the head modules
# Each kind of argument has one check, called by the functions below and by the heads' constructors, so a
# functional twin rejects exactly what its class rejects. Python numbers only: no check reads a tensor's values.


def check_angular_margin(margin: object, name: str = "margin") -> None:
    """Margins are in radians; a value past pi is almost surely degrees (pytorch-metric-learning's unit)."""
    check_numbers(**{name: margin})
    if margin > math.pi:  # type: ignore[operator]
        raise ValueError(
            f"`{name}` is an angle in radians and must lie in [0, pi], got {margin}; "
            f"if this is degrees (as in pytorch-metric-learning), pass math.radians({margin})"
        )
    check_number_in_range(margin, name, 0.0, math.pi)


def check_cosine_margin(margin: object, name: str = "margin", low: float = 0.0) -> None:
    """Raise unless an additive cosine margin is a real number in ``[low, 2]`` (a cosine spans 2)."""
    check_number_in_range(margin, name, low, 2.0)


def check_arcface_options(boundary: object, gradient: object) -> None:
    """Raise unless `boundary` is one of `BOUNDARIES` and `gradient` one of `GRADIENTS`."""
    check_choice(boundary, "boundary", BOUNDARIES)
    check_choice(gradient, "gradient", GRADIENTS)


def check_combined_margins(m1: object, m2: object, m3: object, boundary: object, gradient: object) -> None:
    """Raise unless ``(m1, m2, m3)`` are in range and ``boundary`` is ``"none"`` whenever ``m1 != 1``."""
    check_number_in_range(m1, "m1", 0.0, 10.0)
    check_angular_margin(m2, "m2")
    check_cosine_margin(m3, "m3", low=-1.0)
    check_arcface_options(boundary, gradient)
    if m1 != 1.0 and boundary != "none":
        raise ValueError(f"`boundary` must be 'none' when m1 != 1 (got m1={m1}, boundary={boundary!r})")


def check_elastic_margin_std(std: object, name: str = "std") -> None:
    """Raise unless ElasticFace's margin standard deviation is a real number in [0, 1]."""
    check_number_in_range(std, name, 0.0, 1.0)


def check_eps(eps: object) -> None:
    """Raise unless a clamp `eps` is a finite real number > 0."""
    check_numbers(eps=eps)
    check_positive(eps, "eps")  # type: ignore[arg-type]


def checked_labels(labels: object, batch_size: int, num_classes: int) -> Tensor:
    """`labels` checked (any integer dtype, values in [0, num_classes)) and returned as torch.long."""
    check_class_labels(labels, batch_size, num_classes)
    assert isinstance(labels, Tensor)
    return labels.long()  # uint8 would index as a mask, int16 not at all


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """float32, or float64 when any input is float64: logits are never computed in half precision."""
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def _cosines(embeddings: Tensor, weight: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """The (B, C) cosine matrix and, with labels, each row's (B,) target cosine (call with autocast off).

    The target cosines are computed from the labelled centres directly, so the gradient of the matrix and of
    the targets travel separate, small paths (no (B, C) scatter in backward).
    """
    dtype = compute_dtype(embeddings, weight)
    x_hat = F.normalize(embeddings.to(dtype), dim=1)
    centres = weight.to(dtype)
    cosine = normalized_linear(x_hat, centres)
    if labels is None:
        return cosine, None
    return cosine, (x_hat * F.normalize(centres[labels], dim=1)).sum(1)


def _checked_cosines_and_labels(embeddings: Tensor, weight: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    check_class_centres(weight)
    check_embeddings(embeddings, weight.shape[1])
    labels = checked_labels(labels, embeddings.shape[0], weight.shape[0])
    with full_precision(embeddings):
        cosine, cos_y = _cosines(embeddings, weight, labels)
    assert cos_y is not None
    return cosine, cos_y, labels


def checked_cosines(embeddings: Tensor, weight: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Validate a head's inputs, then return the cosine matrix and the target cosines (autocast off)."""
    return _checked_cosines_and_labels(embeddings, weight, labels)[:2]


def cosine_matrix(embeddings: Tensor, weight: Tensor) -> Tensor:
    """Cosine between each embedding (B, D) and each class centre (C, D): a (B, C) tensor.

    Computed outside autocast in float32 (float64 if an input is float64), so bf16/fp16 training gets
    full-precision logits and the class centres are never cast.
    """
    check_class_centres(weight)
    check_embeddings(embeddings, weight.shape[1])
    with full_precision(embeddings):
        return _cosines(embeddings, weight, None)[0]


def margin_logits(cosine: Tensor, labels: Tensor, target: Tensor, scale: float) -> Tensor:
    """``scale * cosine`` with each row's labelled entry replaced by ``scale * target``.

    `cosine` (B, C) and `target` (B,) floating, `labels` (B,) integer in [0, C) (checked: one host sync).
    """
    check_margin_inputs(cosine, target, labels)
    check_scale(scale)
    return _margin_logits(cosine, labels.long(), target, scale)


def _margin_logits(cosine: Tensor, labels: Tensor, target: Tensor, scale: float) -> Tensor:
    logits = cosine * scale
    # In place on a fresh tensor: the multiplication keeps no output for backward, so this is safe and
    # saves one (B, C) copy.
    return logits.scatter_(1, labels.unsqueeze(1), (target * scale).unsqueeze(1).to(logits.dtype))


def _clamp_finite(values: Tensor, low: float, high: float) -> Tensor:
    """`values` clamped to [low, high], an infinite value turned into NaN instead of a plausible bound."""
    return nan_where_infinite(values, values.clamp(low, high))


def _straight_through(cos_y: Tensor, value: Tensor, gradient: Gradient) -> Tensor:
    if gradient == "straight_through":
        return cos_y + (value - cos_y).detach()
    return value


def arcface_target(
    cos_y: Tensor,
    margin: float | Tensor,
    boundary: Boundary = "threshold",
    gradient: Gradient = "exact",
) -> Tensor:
    """ArcFace target cosine ``cos(theta + m)`` with the chosen handling of ``theta + m > pi``.

    Args:
        cos_y: cosine of each sample's labelled class, shape (B,).
        margin: additive angular margin in radians; a float or a (B,) tensor of per-sample margins.
        boundary: ``"threshold"`` (insightface legacy and pytorch-metric-learning: past ``theta = pi - m``
            use ``cos(theta) - m sin(m)`` so the logit keeps decreasing), ``"easy_margin"`` (margin only
            where ``cos(theta) > 0``) or ``"none"`` (plain ``cos(theta + m)``, as ElasticFace).
        gradient: ``"exact"`` differentiates ``cos(theta + m)``; ``"straight_through"`` passes the gradient
            of the unmodified cosine, as insightface's current ``CombinedMarginLoss`` does.

    ``cos(theta + m)`` is computed as ``cos(theta) cos(m) - sin(theta) sin(m)`` without ``acos``, so the value
    and gradient are finite when a cosine is exactly +-1. Computed in float32 or wider, returned in `cos_y`'s
    dtype; an infinite cosine gives NaN, not the clamped bound's target (the same holds for every ``*_target``).
    """
    if not isinstance(margin, Tensor):  # per-sample (B,) margins are drawn by the library: no value check (sync)
        check_angular_margin(margin)
    check_arcface_options(boundary, gradient)
    c = _clamp_finite(at_least_float32(cos_y), -1.0, 1.0)  # float16 would lose the sin(theta) floor
    m = torch.as_tensor(margin, dtype=c.dtype, device=c.device)
    sin_theta = torch.sqrt((1.0 - c * c).clamp_min(_SIN_SQUARED_FLOOR))
    value = c * torch.cos(m) - sin_theta * torch.sin(m)
    if boundary == "threshold":
        value = torch.where(c >= torch.cos(math.pi - m), value, c - m * torch.sin(m))
    elif boundary == "easy_margin":
        value = torch.where(c > 0, value, c)
    return _straight_through(cos_y, value.to(cos_y.dtype), gradient)


def cosface_target(cos_y: Tensor, margin: float | Tensor) -> Tensor:
    """CosFace target cosine ``cos(theta) - m`` (additive cosine margin; a float or (B,) tensor)."""
    if not isinstance(margin, Tensor):
        check_cosine_margin(margin)
    return cos_y - margin


def combined_target(
    cos_y: Tensor,
    m1: float,
    m2: float,
    m3: float,
    boundary: Boundary = "none",
    gradient: Gradient = "exact",
    eps: float = 1e-7,
) -> Tensor:
    """insightface's combined margin ``cos(m1 * theta + m2) - m3`` (SphereFace m1, ArcFace m2, CosFace m3).

    With ``m1 == 1`` this is `arcface_target` (any ``boundary``) minus ``m3``. With ``m1 != 1`` the angle is
    taken with ``acos`` of the cosine clamped to ``[-1 + eps, 1 - eps]`` and only ``boundary="none"`` is defined.
    """
    check_combined_margins(m1, m2, m3, boundary, gradient)
    if m1 == 1.0:
        return arcface_target(cos_y, m2, boundary, gradient) - m3
    theta = torch.acos(_clamp_finite(at_least_float32(cos_y), -1.0 + eps, 1.0 - eps))
    value = torch.cos(m1 * theta + m2) - m3
    return _straight_through(cos_y, value.to(cos_y.dtype), gradient)


@torch.no_grad()
def elastic_margins(
    cos_y: Tensor,
    mean: float,
    std: float,
    plus: bool = False,
    assignment: PlusAssignment = "official_gather",
) -> Tensor:
    """ElasticFace per-sample margins ``m_i ~ N(mean, std^2)``, redrawn at every call (global RNG).

    ``plus=True`` is ElasticFace+: the drawn margins are reassigned by `assign_sorted_margins`.
    No gradient flows into the margins. The global generator advances by ``cos_y.numel()`` normal draws per call
    whatever the values of ``cos_y`` (a non-finite batch consumes its draws as a finite one does: skipping them
    would need a host sync).
    """
    check_number_in_range(mean, "mean", 0.0, math.pi)
    check_elastic_margin_std(std)
    check_flags(plus=plus)
    check_choice(assignment, "assignment", PLUS_ASSIGNMENTS)
    margins = torch.normal(mean, std, size=cos_y.shape, dtype=cos_y.dtype, device=cos_y.device)
    return assign_sorted_margins(cos_y, margins, assignment) if plus else margins


@torch.no_grad()
def assign_sorted_margins(cos_y: Tensor, margins: Tensor, assignment: PlusAssignment = "official_gather") -> Tensor:
    """ElasticFace+'s reassignment of a batch's margins by target cosine.

    ``"official_gather"`` reproduces the official code, ``sort(margins)[argsort(cos, descending)]``, which is
    not a rank match (with cos [.1, .9, .5, .3, .7] the sample at .9 gets the largest margin);
    ``"rank"`` gives the k-th largest cosine the k-th smallest margin. Either way the batch's margins are only
    permuted.
    """
    check_choice(assignment, "assignment", PLUS_ASSIGNMENTS)
    order = torch.argsort(cos_y, descending=True)
    sorted_margins = torch.sort(margins).values
    if assignment == "official_gather":
        return sorted_margins[order]
    ranked = torch.empty_like(sorted_margins)
    ranked[order] = sorted_margins
    return ranked


def adaface_margin_scaler(norms: Tensor, mean: Tensor, std: Tensor, h: float, eps: float = 1e-3) -> Tensor:
    """AdaFace's standardised feature norm ``clip(h (||z|| - mu) / (sigma + eps), -1, 1)``, detached."""
    check_number_in_range(h, "h", 0.0, 10.0)
    check_eps(eps)
    return _clamp_finite((norms.detach() - mean) / (std + eps) * h, -1.0, 1.0)


def adaface_target(cos_y: Tensor, margin_scaler: Tensor, margin: float, eps: float = 1e-3) -> Tensor:
    """AdaFace target cosine ``cos(clip(theta - m z, eps, pi - eps)) - (m + m z)`` for scaler ``z`` in [-1, 1].

    ``z = -1`` gives ArcFace(m), ``z = 0`` CosFace(m), ``z = 1`` ``cos(theta - m) - 2m``.
    """
    check_cosine_margin(margin)
    check_eps(eps)
    theta = torch.acos(_clamp_finite(at_least_float32(cos_y), -1.0 + eps, 1.0 - eps))
    angular = -margin * margin_scaler
    additive = margin + margin * margin_scaler
    return (torch.cos((theta + angular).clamp(eps, math.pi - eps)) - additive).to(cos_y.dtype)


def clamp_cosines(cosine: Tensor, eps: float | None) -> Tensor:
    """Every cosine clamped to ``[-1 + eps, 1 - eps]`` (AdaFace's official code clamps the whole matrix), or
    `cosine` itself when ``eps`` is None (every other head)."""
    return cosine if eps is None else cosine.clamp(-1.0 + eps, 1.0 - eps)


def margin_softmax_logits(
    embeddings: Tensor,
    weight: Tensor,
    labels: Tensor,
    target_fn: Callable[[Tensor], Tensor],
    scale: float,
    cosine_eps: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Validate the inputs, then return ``(margin logits, cosine matrix)`` for a margin head.

    ``target_fn`` maps the (B,) target cosines to the modified target cosines (one of the ``*_target``
    functions above with its hyperparameters bound); it runs only once every input has been checked.
    ``cosine_eps`` clamps every cosine of the logits (`clamp_cosines`); the returned matrix is unclamped.
    """
    check_scale(scale)
    cosine, cos_y, labels = _checked_cosines_and_labels(embeddings, weight, labels)
    with full_precision(embeddings):
        return _margin_logits(clamp_cosines(cosine, cosine_eps), labels, target_fn(cos_y), scale), cosine


def margin_softmax_loss_and_cosine(
    embeddings: Tensor,
    weight: Tensor,
    labels: Tensor,
    target_fn: Callable[[Tensor], Tensor],
    scale: float,
    reduction: Reduction = "mean",
    cosine_eps: float | None = None,
) -> tuple[Tensor, Tensor]:
    """The margin head's cross-entropy and the (unclamped) cosine matrix, with the memory-lean fused kernels.

    Equals ``F.cross_entropy(margin_softmax_logits(...)[0], labels)``. Non-finite embeddings or centres give a
    non-finite loss (values are not checked: no host sync).
    """
    check_scale(scale)
    check_reduction(reduction)
    cosine, cos_y, labels = _checked_cosines_and_labels(embeddings, weight, labels)
    with full_precision(embeddings):
        loss = margin_cross_entropy_of_checked(
            clamp_cosines(cosine, cosine_eps), target_fn(cos_y), labels, scale, reduction
        )
        return loss, cosine


def margin_softmax_loss(
    embeddings: Tensor,
    weight: Tensor,
    labels: Tensor,
    target_fn: Callable[[Tensor], Tensor],
    scale: float,
    reduction: Reduction = "mean",
    cosine_eps: float | None = None,
) -> Tensor:
    """The loss of every cosine-margin head: cross-entropy over the margin logits."""
    return margin_softmax_loss_and_cosine(embeddings, weight, labels, target_fn, scale, reduction, cosine_eps)[0]


def arcface_loss(
    embeddings: Tensor,
    weight: Tensor,
    labels: Tensor,
    margin: float = 0.5,
    scale: float = 64.0,
    boundary: Boundary = "threshold",
    gradient: Gradient = "exact",
    reduction: Reduction = "mean",
) -> Tensor:
    """Functional ArcFace: ``CE(s * [cos(theta_y + m), cos(theta_j)])``; see `hf_margin.heads.ArcFaceHead`.

    Checks its arguments as the head does (``margin`` in radians, in [0, pi]; a positive finite ``scale``).
    """
    check_angular_margin(margin)
    check_arcface_options(boundary, gradient)
    return margin_softmax_loss(
        embeddings,
        weight,
        labels,
        partial(arcface_target, margin=margin, boundary=boundary, gradient=gradient),
        scale,
        reduction,
    )


def cosface_loss(
    embeddings: Tensor,
    weight: Tensor,
    labels: Tensor,
    margin: float = 0.35,
    scale: float = 64.0,
    reduction: Reduction = "mean",
) -> Tensor:
    """Functional CosFace: ``CE(s * [cos(theta_y) - m, cos(theta_j)])``; see `hf_margin.heads.CosFaceHead`.

    Checks its arguments as the head does (``margin`` in [0, 2]; a positive finite ``scale``).
    """
    check_cosine_margin(margin)
    return margin_softmax_loss(embeddings, weight, labels, partial(cosface_target, margin=margin), scale, reduction)
