"""Two unrelated losses that share a name: the Z-loss (a classification loss) and the logit z-loss (a regulariser).

1. Z-loss: de Brébisson & Vincent, "The Z-loss: a shift and scale invariant classification loss belonging to the
   Spherical Family" (arXiv 1604.08859). The logits ``o`` (D >= 2 classes) are standardised,

       mu = mean_k o_k,   sigma^2 = mean_k (o_k - mu)^2,   z_c = (o_c - mu) / sigma,

   and ``L_Z(o, c) = softplus(a (b - z_c)) / a`` with a > 0 and b real. The loss depends on o only through z,
   so it is invariant to ``o -> alpha o + beta`` for alpha > 0; ``dL/dz_c = -sigmoid(a (b - z_c))`` lies in
   (-1, 0). The paper tunes a and b per task; their values are not recorded in our reference, so both are
   required arguments here. sigma uses the population variance, computed as the mean squared deviation (equal to
   ``mean o^2 - mu^2`` but without cancellation), and ``sigma = sqrt(var + eps)`` so that equal logits (var = 0)
   give z = 0 and a finite loss ``softplus(a b) / a``; eps breaks the scale invariance only when var is of the
   order of eps.

2. Logit z-loss: ``coefficient * logsumexp(logits)^2``, the auxiliary log-partition penalty of PaLM
   (coefficient 1e-4) and of ST-MoE's router (1e-3). It is not a classification loss and not the Z-loss above:
   it has no labels and only pulls the softmax normaliser ``log Z`` towards 0 to keep logits from drifting.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._validation import (
    check_choice,
    check_class_labels,
    check_number_in_range,
    check_numbers,
    check_positive_number,
)

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")
DEFAULT_EPS = 1e-6


def standardized_logits(logits: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """``z = (o - mean o) / sqrt(var o + eps)`` along the last dimension (population variance; D >= 2 classes).

    A class masked with -inf (as F.cross_entropy allows) is left out of the mean and variance and gets z = -inf.
    """
    _check_logits(logits, "logits")
    check_positive_number(eps, "eps")
    logits = at_least_float32(logits)
    masked = logits == float("-inf")
    # Zeros in place of the masked entries keep both the values and their gradients finite.
    kept = (~masked).sum(dim=-1, keepdim=True).clamp_min(1)
    logits = logits.masked_fill(masked, 0.0)
    centred = (logits - logits.sum(dim=-1, keepdim=True) / kept).masked_fill(masked, 0.0)
    variance = centred.square().sum(dim=-1, keepdim=True) / kept
    return (centred / torch.sqrt(variance + eps)).masked_fill(masked, float("-inf"))


def check_z_loss_options(a: float, b: float, eps: float, reduction: str) -> None:
    """Check the Z-loss's settings (the module when built, the function on every call)."""
    check_numbers(b=b)
    check_positive_number(a, "a")
    if not math.isfinite(b):
        raise ValueError(f"`b` must be a finite real number, got {b!r}")
    check_positive_number(eps, "eps")
    check_choice(reduction, "reduction", REDUCTIONS)


def check_logit_z_loss_options(coefficient: float, reduction: str) -> None:
    """Check the logit z-loss's settings (the module when built, the function on every call)."""
    check_number_in_range(coefficient, "coefficient", 0.0, math.inf)
    if not math.isfinite(coefficient):
        raise ValueError(f"`coefficient` must be finite, got {coefficient!r}")
    check_choice(reduction, "reduction", REDUCTIONS)


def z_loss(
    logits: Tensor,
    labels: Tensor,
    a: float,
    b: float,
    eps: float = DEFAULT_EPS,
    reduction: str = "mean",
) -> Tensor:
    """The Z-loss ``softplus(a (b - z_c)) / a`` of the standardised logits z (see the module docstring).

    Args:
        logits: (batch, num_classes) scores o, num_classes >= 2; a class masked with -inf is left out of the
            standardisation (NaN logits give a NaN loss).
        labels: (batch,) integer classes c in [0, num_classes).
        a: the sharpness a > 0 (tuned per task in the paper; no default).
        b: the target standardised score b, any finite real (tuned per task in the paper; no default).
        eps: > 0 added to the variance inside the square root.
        reduction: "mean", "sum" or "none" ((batch,)).
    """
    check_z_loss_options(a, b, eps, reduction)
    _check_logits(logits, "logits")
    if logits.dim() != 2:
        raise ValueError(f"`logits` must have shape (batch, num_classes), got {tuple(logits.shape)}")
    check_class_labels(labels, logits.shape[0], logits.shape[1])
    z = standardized_logits(logits, eps)
    z_target = z.gather(1, labels.unsqueeze(1)).squeeze(1)
    losses = F.softplus(a * (b - z_target)) / a
    return _reduce(losses, reduction)


def logit_z_loss(logits: Tensor, coefficient: float = 1e-4, reduction: str = "mean") -> Tensor:
    """PaLM's log-partition penalty ``coefficient * logsumexp(logits, dim=-1)^2`` (not the Z-loss of de Brébisson).

    Args:
        logits: (..., num_classes) scores, e.g. (batch, vocab) or (batch, seq, vocab); reduced over the last dim.
        coefficient: >= 0 (1e-4 in PaLM, 1e-3 for ST-MoE's router).
        reduction: "mean" or "sum" over every position, or "none" (the shape of `logits` without its last dim).
    """
    check_logit_z_loss_options(coefficient, reduction)
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError(f"`logits` must be a floating-point torch.Tensor, got {getattr(logits, 'dtype', type(logits))}")
    if logits.dim() == 0 or logits.numel() == 0:
        raise ValueError(f"`logits` must have shape (..., num_classes) and be non-empty, got {tuple(logits.shape)}")
    log_partition = torch.logsumexp(at_least_float32(logits), dim=-1)
    return _reduce(coefficient * log_partition.square(), reduction)


def _check_logits(logits: Tensor, name: str) -> None:
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point torch.Tensor, got {getattr(logits, 'dtype', type(logits))}")
    if logits.dim() == 0 or logits.shape[-1] < 2:
        raise ValueError(
            f"`{name}` must have shape (batch, num_classes) with num_classes >= 2 (z-scores need at least two "
            f"classes), got {tuple(logits.shape)}"
        )
    if logits.numel() == 0:
        raise ValueError(f"`{name}` is an empty batch (shape {tuple(logits.shape)})")


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    return losses.sum() if reduction == "sum" else losses
