"""Memory-lean building blocks of the margin heads' loss, with hand-written backward passes.

A margin head's loss needs the (B, C) cosine matrix; with many classes its (B, C) intermediates and the
normalised copy of the (C, D) class centres dominate memory. These two functions keep one (B, C) buffer
alive between forward and backward and never materialise the normalised centres:

* `normalized_linear` computes ``cos = x_hat W^T / ||W_j||`` and saves only ``x_hat``, ``W`` and ``1/||W_j||``;
* `margin_cross_entropy` takes the cosines and the (B,) margin-modified target cosines and saves only the
  softmax probabilities, written over its own logits buffer.

Both are checked against plain autograd with gradcheck in the tests.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hf_margin._reduction import REDUCTIONS
from hf_margin._validation import (
    check_choice,
    check_class_labels,
    check_embeddings,
    check_numbers,
    check_positive,
)

_NORM_EPS = 1e-12  # as F.normalize


def check_scale(scale: object, name: str = "scale") -> None:
    """Raise unless a logit scale ``s`` is a finite real number > 0 (TypeError for a string, bool, ...)."""
    check_numbers(**{name: scale})
    check_positive(scale, name)  # type: ignore[arg-type]


def check_reduction(reduction: object) -> None:
    """Raise unless `reduction` is ``"mean"``, ``"sum"`` or ``"none"``."""
    check_choice(reduction, "reduction", REDUCTIONS)


def check_class_centres(weight: object, name: str = "weight") -> None:
    """Raise unless `weight` is a floating tensor of class centres of shape (num_classes >= 1, dim)."""
    if not isinstance(weight, Tensor):
        raise TypeError(
            f"`{name}` must be a torch.Tensor of class centres of shape (num_classes, dim), got {type(weight).__name__}"
        )
    if not weight.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {weight.dtype}")
    if weight.dim() != 2:
        raise ValueError(f"`{name}` must have shape (num_classes, dim), got shape {tuple(weight.shape)}")
    if weight.shape[0] == 0:
        raise ValueError(f"`{name}` has no class centres (shape {tuple(weight.shape)}); need at least one")


def check_cosines_and_target(cosine: object, target: object) -> None:
    """Raise unless `cosine` is a floating (batch >= 1, classes) matrix and `target` a floating (batch,) vector."""
    check_embeddings(cosine, name="cosine")
    assert isinstance(cosine, Tensor)
    if not isinstance(target, Tensor) or not target.is_floating_point():
        got = f"dtype {target.dtype}" if isinstance(target, Tensor) else type(target).__name__
        raise TypeError(f"`target` must be a floating-point tensor of target cosines, got {got}")
    if tuple(target.shape) != (cosine.shape[0],):
        raise ValueError(f"`target` must have shape ({cosine.shape[0]},) (one per row), got {tuple(target.shape)}")


def check_margin_inputs(cosine: object, target: object, labels: object) -> None:
    """The argument checks of `margin_logits` / `margin_cross_entropy` (labels in [0, classes): one host sync)."""
    check_cosines_and_target(cosine, target)
    assert isinstance(cosine, Tensor)
    check_class_labels(labels, cosine.shape[0], cosine.shape[1])


class _NormalizedLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x_hat: Tensor, weight: Tensor) -> Tensor:
        inv_norm = weight.norm(dim=1).clamp_min(_NORM_EPS).reciprocal()
        ctx.save_for_backward(x_hat, weight, inv_norm)
        return (x_hat @ weight.t()).mul_(inv_norm)

    @staticmethod
    def backward(ctx: Any, grad_cos: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x_hat, weight, inv_norm = ctx.saved_tensors
        grad_raw = grad_cos * inv_norm
        grad_x = grad_raw @ weight if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            # d cos_ij / d W_j = x_i / n_j - cos_ij W_j / n_j^2, summed over i with weights g_ij:
            # with G = (g / n)^T x_hat this is G_j - (W_j . G_j) W_j / n_j^2.
            projected = grad_raw.t() @ x_hat
            along_weight = (projected * weight).sum(1) * inv_norm.square()
            grad_weight = projected.sub_(weight * along_weight.unsqueeze(1))
        return grad_x, grad_weight


def normalized_linear(x_hat: Tensor, weight: Tensor) -> Tensor:
    """``x_hat @ normalize(weight).T`` for unit-norm rows `x_hat` (B, D) and centres `weight` (C, D).

    Both must be floating and of one dtype (the heads compute in float32, or float64); values are not checked.
    Either may have no rows (an empty shard of Partial FC's sampled centres gives a (B, 0) matrix).
    """
    for name, tensor in (("x_hat", x_hat), ("weight", weight)):
        if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
            got = f"dtype {tensor.dtype}" if isinstance(tensor, Tensor) else type(tensor).__name__
            raise TypeError(f"`{name}` must be a floating-point tensor of shape (rows, dim), got {got}")
        if tensor.dim() != 2:
            raise ValueError(f"`{name}` must have shape (rows, dim), got shape {tuple(tensor.shape)}")
    if x_hat.shape[1] != weight.shape[1] or x_hat.dtype != weight.dtype:
        raise ValueError(
            f"`x_hat` and `weight` must share their dim and dtype, got {x_hat.dtype} {tuple(x_hat.shape)} and "
            f"{weight.dtype} {tuple(weight.shape)}"
        )
    return _NormalizedLinear.apply(x_hat, weight)


class _MarginCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cosine: Tensor, target: Tensor, labels: Tensor, scale: float, reduction: str) -> Tensor:
        rows = labels.unsqueeze(1)
        logits = (cosine * scale).scatter_(1, rows, (target * scale).unsqueeze(1).to(cosine.dtype))
        row_max = logits.amax(1, keepdim=True)
        probabilities = logits.sub_(row_max).exp_()
        normaliser = probabilities.sum(1, keepdim=True)
        probabilities.div_(normaliser)
        losses = (row_max + normaliser.log()).squeeze(1) - scale * target
        ctx.save_for_backward(probabilities, labels)
        ctx.scale, ctx.reduction = scale, reduction
        if reduction == "mean":
            return losses.mean()
        return losses.sum() if reduction == "sum" else losses

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, None, None, None]:
        probabilities, labels = ctx.saved_tensors
        batch = probabilities.shape[0]
        if ctx.reduction == "none":
            per_row = grad_output
        else:
            per_row = grad_output.expand(batch) / (batch if ctx.reduction == "mean" else 1)
        per_row = per_row * ctx.scale
        rows = labels.unsqueeze(1)
        grad_target = (probabilities.gather(1, rows).squeeze(1) - 1.0) * per_row
        # The labelled column's logit comes from `target`, not from `cosine`: its gradient goes there.
        grad_cosine = (probabilities * per_row.unsqueeze(1)).scatter_(1, rows, 0.0)
        return grad_cosine, grad_target.to(probabilities.dtype), None, None, None


def margin_cross_entropy(
    cosine: Tensor, target: Tensor, labels: Tensor, scale: float, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy of ``scale * cosine`` with each row's labelled logit replaced by ``scale * target``.

    Equals ``F.cross_entropy(margin_logits(cosine, labels, target, scale), labels)``, but keeps only the
    softmax probabilities for backward. ``target`` is differentiable (the margin functions' output); the
    labelled entries of ``cosine`` receive no gradient, since they do not enter the loss. ``labels`` may have
    any integer dtype. Non-finite cosines or targets give a non-finite loss (values are not checked; the label
    range check is the one host sync).
    """
    check_margin_inputs(cosine, target, labels)
    return margin_cross_entropy_of_checked(cosine, target, labels, scale, reduction)


def margin_cross_entropy_of_checked(
    cosine: Tensor, target: Tensor, labels: Tensor, scale: float, reduction: str = "mean"
) -> Tensor:
    """`margin_cross_entropy` for callers that have checked the tensors already (no label-range sync)."""
    check_scale(scale)
    check_reduction(reduction)
    return _MarginCrossEntropy.apply(cosine, target, labels.long(), scale, reduction)
