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

from hf_margin._precision import full_precision
from hf_margin._validation import check_class_labels, check_embeddings
from hf_margin.functional.cosine_softmax import margin_cross_entropy, normalized_linear

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


def checked_cosines(embeddings: Tensor, weight: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Validate a head's inputs, then return the cosine matrix and the target cosines (autocast off)."""
    check_embeddings(embeddings, weight.shape[1])
    check_class_labels(labels, embeddings.shape[0], weight.shape[0])
    with full_precision(embeddings):
        cosine, cos_y = _cosines(embeddings, weight, labels)
    assert cos_y is not None
    return cosine, cos_y


def cosine_matrix(embeddings: Tensor, weight: Tensor) -> Tensor:
    """Cosine between each embedding (B, D) and each class centre (C, D): a (B, C) tensor.

    Computed outside autocast in float32 (float64 if an input is float64), so bf16/fp16 training gets
    full-precision logits and the class centres are never cast.
    """
    with full_precision(embeddings):
        return _cosines(embeddings, weight, None)[0]


def margin_logits(cosine: Tensor, labels: Tensor, target: Tensor, scale: float) -> Tensor:
    """``scale * cosine`` with each row's labelled entry replaced by ``scale * target``."""
    logits = cosine * scale
    # In place on a fresh tensor: the multiplication keeps no output for backward, so this is safe and
    # saves one (B, C) copy.
    return logits.scatter_(1, labels.unsqueeze(1), (target * scale).unsqueeze(1).to(logits.dtype))


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
    and gradient are finite when a cosine is exactly +-1.
    """
    c = cos_y.clamp(-1.0, 1.0)
    m = torch.as_tensor(margin, dtype=c.dtype, device=c.device)
    sin_theta = torch.sqrt((1.0 - c * c).clamp_min(_SIN_SQUARED_FLOOR))
    value = c * torch.cos(m) - sin_theta * torch.sin(m)
    if boundary == "threshold":
        value = torch.where(c >= torch.cos(math.pi - m), value, c - m * torch.sin(m))
    elif boundary == "easy_margin":
        value = torch.where(c > 0, value, c)
    return _straight_through(cos_y, value, gradient)


def cosface_target(cos_y: Tensor, margin: float | Tensor) -> Tensor:
    """CosFace target cosine ``cos(theta) - m`` (additive cosine margin; a float or (B,) tensor)."""
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
    if m1 == 1.0:
        return arcface_target(cos_y, m2, boundary, gradient) - m3
    if boundary != "none":
        raise ValueError(f"`boundary` must be 'none' when m1 != 1 (got m1={m1}, boundary={boundary!r})")
    theta = torch.acos(cos_y.clamp(-1.0 + eps, 1.0 - eps))
    value = torch.cos(m1 * theta + m2) - m3
    return _straight_through(cos_y, value, gradient)


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
    No gradient flows into the margins.
    """
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
    order = torch.argsort(cos_y, descending=True)
    sorted_margins = torch.sort(margins).values
    if assignment == "official_gather":
        return sorted_margins[order]
    ranked = torch.empty_like(sorted_margins)
    ranked[order] = sorted_margins
    return ranked


def adaface_margin_scaler(norms: Tensor, mean: Tensor, std: Tensor, h: float, eps: float = 1e-3) -> Tensor:
    """AdaFace's standardised feature norm ``clip(h (||z|| - mu) / (sigma + eps), -1, 1)``, detached."""
    return ((norms.detach() - mean) / (std + eps) * h).clamp(-1.0, 1.0)


def adaface_target(cos_y: Tensor, margin_scaler: Tensor, margin: float, eps: float = 1e-3) -> Tensor:
    """AdaFace target cosine ``cos(clip(theta - m z, eps, pi - eps)) - (m + m z)`` for scaler ``z`` in [-1, 1].

    ``z = -1`` gives ArcFace(m), ``z = 0`` CosFace(m), ``z = 1`` ``cos(theta - m) - 2m``.
    """
    theta = torch.acos(cos_y.clamp(-1.0 + eps, 1.0 - eps))
    angular = -margin * margin_scaler
    additive = margin + margin * margin_scaler
    return torch.cos((theta + angular).clamp(eps, math.pi - eps)) - additive


def margin_softmax_logits(
    embeddings: Tensor,
    weight: Tensor,
    labels: Tensor,
    target_fn: Callable[[Tensor], Tensor],
    scale: float,
) -> tuple[Tensor, Tensor]:
    """Validate the inputs, then return ``(margin logits, cosine matrix)`` for a margin head.

    ``target_fn`` maps the (B,) target cosines to the modified target cosines (one of the ``*_target``
    functions above with its hyperparameters bound).
    """
    cosine, cos_y = checked_cosines(embeddings, weight, labels)
    with full_precision(embeddings):
        return margin_logits(cosine, labels, target_fn(cos_y), scale), cosine


def margin_softmax_loss_and_cosine(
    embeddings: Tensor,
    weight: Tensor,
    labels: Tensor,
    target_fn: Callable[[Tensor], Tensor],
    scale: float,
    reduction: Reduction = "mean",
) -> tuple[Tensor, Tensor]:
    """The margin head's cross-entropy and the cosine matrix, with the memory-lean fused kernels.

    Equals ``F.cross_entropy(margin_softmax_logits(...)[0], labels)``.
    """
    cosine, cos_y = checked_cosines(embeddings, weight, labels)
    with full_precision(embeddings):
        return margin_cross_entropy(cosine, target_fn(cos_y), labels, scale, reduction), cosine


def margin_softmax_loss(
    embeddings: Tensor,
    weight: Tensor,
    labels: Tensor,
    target_fn: Callable[[Tensor], Tensor],
    scale: float,
    reduction: Reduction = "mean",
) -> Tensor:
    """The loss of every cosine-margin head: cross-entropy over the margin logits."""
    return margin_softmax_loss_and_cosine(embeddings, weight, labels, target_fn, scale, reduction)[0]


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
    """Functional ArcFace: ``CE(s * [cos(theta_y + m), cos(theta_j)])``; see `hf_margin.heads.ArcFaceHead`."""
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
    """Functional CosFace: ``CE(s * [cos(theta_y) - m, cos(theta_j)])``; see `hf_margin.heads.CosFaceHead`."""
    return margin_softmax_loss(embeddings, weight, labels, partial(cosface_target, margin=margin), scale, reduction)
