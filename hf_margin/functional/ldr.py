"""Label-distributionally-robust losses LDR-KL and ALDR-KL.

Zhu, Ying, Yang, "Label Distributionally Robust Losses for Multi-class Classification: Consistency, Robustness
and Adaptivity" (ICML 2023, arXiv 2112.14869).

- LDR-KL: with ``delta_k = f_k - f_y + c 1[k != y]``, the worst case over label distributions p of
  ``sum_k p_k delta_k - lambda KL(p || uniform)`` has the closed form ``lambda log((1/K) sum_k exp(delta_k / lambda))``.
  lambda = 1, c = 0 is cross-entropy minus log K; lambda -> 0 the Crammer-Singer hinge ``max_k delta_k``;
  lambda -> infinity ``mean_k delta_k``.
- ALDR-KL: every training example i has its own lambda_i, kept across steps. Each step first updates it from the
  current logits: ``p = normalise(softmax(f / lambda_i) + 1e-5)``, ``lambda_i = lambda_0 (1 - KL(p || u) /
  (alpha log K))`` (so lambda_i stays in [lambda_0 (1 - 1/alpha), lambda_0]; a confident, possibly noisy,
  example gets a smaller lambda_i), then the loss is LDR-KL with lambda_i minus the constant
  ``alpha log K / (2 lambda_0) (lambda_i - lambda_0)^2``. Written from the official code's closed form; the
  paper's own parameterisation of the lambda regulariser was not found, the code's update is its stationary point.
- The official code first rescales the logits (softplus, then divide by the row mean); that is offered as
  ``logit_normalization`` ("l1": divide by the mean absolute logit; "softplus_l1": softplus first), off in these
  functions and on in the `LDRKLLoss` ("softplus_l1") and `ALDRKLLoss` ("l1") modules, as in the official code.
  Defaults from the official experiments: margin c = 0.1, lambda = lambda_0 = 10, alpha = 2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS, reduce_losses
from hf_margin._validation import (
    check_choice,
    check_class_labels,
    check_embeddings,
    check_number_in_range,
    check_numbers,
    check_positive_number,
)

NORMALIZATIONS = ("none", "l1", "softplus_l1")


def check_ldr_options(lam: float, margin: float, logit_normalization: str, name: str = "lam") -> None:
    """Check LDR-KL's settings (a module checks them when built, the functions on every call)."""
    check_positive_number(lam, name)
    check_number_in_range(margin, "margin", 0.0, float("inf"))
    check_choice(logit_normalization, "logit_normalization", NORMALIZATIONS)


def check_alpha(alpha: float) -> None:
    """ALDR-KL's alpha must exceed 1."""
    check_numbers(alpha=alpha)
    if not alpha > 1:
        raise ValueError(f"`alpha` must be > 1 (it keeps lambda_i >= lambda_0 (1 - 1/alpha) > 0), got {alpha}")


def normalize_logits(logits: Tensor, method: str = "none") -> Tensor:
    """The official code's optional logit rescaling: "l1" divides each row by its mean absolute value,
    "softplus_l1" applies softplus first (then every entry is positive); "none" returns the logits.

    Computed in float32 or wider (bf16/fp16 logits are upcast first). A class masked with -inf (as
    F.cross_entropy allows) stays -inf, so it keeps probability 0, and is left out of its row's mean.
    """
    check_choice(method, "logit_normalization", NORMALIZATIONS)
    if method == "none":
        return logits
    work = at_least_float32(logits)
    masked = work == float("-inf")
    # Zeros in place of the masked entries keep both the values and their gradients finite.
    work = work.masked_fill(masked, 0.0)
    if method == "softplus_l1":
        work = F.softplus(work).masked_fill(masked, 0.0)
    kept = (~masked).sum(dim=-1, keepdim=True).clamp_min(1)
    row_mean = work.abs().sum(dim=-1, keepdim=True) / kept
    return (work / row_mean.clamp_min(torch.finfo(work.dtype).tiny)).masked_fill(masked, float("-inf"))


def ldr_kl_per_sample(logits: Tensor, labels: Tensor, lambdas: Tensor | float, margin: float = 0.1) -> Tensor:
    """(batch,) ``lambda log mean_k exp(delta_k / lambda)`` with a scalar or a per-row (batch,) lambda.

    Computed as ``lambda CE((f - c e_y) / lambda, y) - lambda log K`` (adding c to every logit but the target's is
    the same as subtracting it from the target's), which uses torch's fused cross-entropy.
    """
    check_embeddings(logits, name="logits")
    check_class_labels(labels, logits.shape[0], logits.shape[1])
    work = at_least_float32(logits)
    lam = torch.as_tensor(lambdas, dtype=work.dtype, device=work.device)
    rows = lam.unsqueeze(1) if lam.dim() == 1 else lam
    target = labels.unsqueeze(1)
    shifted = work.scatter(1, target, work.gather(1, target) - margin)
    return lam * (F.cross_entropy(shifted / rows, labels, reduction="none") - math.log(logits.shape[1]))


def ldr_kl_loss(
    logits: Tensor,
    labels: Tensor,
    lam: float = 10.0,
    margin: float = 0.1,
    logit_normalization: str = "none",
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """LDR-KL: ``lambda log((1/K) sum_k exp((f_k - f_y + c 1[k != y]) / lambda))``.

    Args:
        logits: (batch, K) raw scores.
        labels: (batch,) class indices.
        lam: lambda > 0, the KL regulariser's weight (the distribution's temperature).
        margin: c >= 0, added to every non-target class.
        logit_normalization: "none", "l1" or "softplus_l1" (the official code's rescaling).
        reduction: "mean", "sum" or "none".
        sample_weight: optional (batch,) per-example weights.
    """
    check_ldr_options(lam, margin, logit_normalization)
    check_choice(reduction, "reduction", REDUCTIONS)
    check_embeddings(logits, name="logits")
    losses = ldr_kl_per_sample(normalize_logits(logits, logit_normalization), labels, lam, margin)
    return reduce_losses(losses, reduction, sample_weight)


def aldr_kl_temperatures(logits: Tensor, lambdas: Tensor, lam0: float = 10.0, alpha: float = 2.0) -> Tensor:
    """ALDR-KL's update of the per-example lambdas from (normalised) logits, detached: (batch,).

    ``p = normalise(softmax(f / lambda_i) + 1e-5)``, ``lambda_i = lambda_0 - lambda_0 KL(p || u) / (alpha log K)``.
    """
    check_positive_number(lam0, "lam0")
    check_alpha(alpha)
    num_classes = logits.shape[1]
    with torch.no_grad():
        work = at_least_float32(logits.detach())
        p = torch.softmax(work / lambdas.to(work.dtype).unsqueeze(1), dim=1) + 1e-5
        p = p / p.sum(dim=1, keepdim=True)
        kl = (p * torch.log(num_classes * p)).sum(dim=1)
        return lam0 - lam0 * kl / (alpha * math.log(num_classes))


def aldr_kl_loss(
    logits: Tensor,
    labels: Tensor,
    lambdas: Tensor,
    lam0: float = 10.0,
    alpha: float = 2.0,
    margin: float = 0.1,
    logit_normalization: str = "none",
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """ALDR-KL for one batch: returns (loss, the batch's updated lambdas to store back).

    Args:
        logits: (batch, K) raw scores.
        labels: (batch,) class indices.
        lambdas: (batch,) the examples' stored lambdas (lambda_0 at the start of training).
        lam0: lambda_0 > 0.
        alpha: alpha > 1; larger keeps lambdas nearer lambda_0 (alpha -> infinity is LDR-KL with lambda_0).
        margin, logit_normalization, reduction, sample_weight: as in :func:`ldr_kl_loss`.
    """
    check_ldr_options(lam0, margin, logit_normalization, name="lam0")
    check_alpha(alpha)
    check_choice(reduction, "reduction", REDUCTIONS)
    check_embeddings(logits, name="logits")
    if not isinstance(lambdas, Tensor) or tuple(lambdas.shape) != (logits.shape[0],):
        got = tuple(lambdas.shape) if isinstance(lambdas, Tensor) else type(lambdas).__name__
        raise ValueError(f"`lambdas` must be a tensor of shape ({logits.shape[0]},) (one per row), got {got}")
    scaled = normalize_logits(logits, logit_normalization)
    updated = aldr_kl_temperatures(scaled, lambdas, lam0, alpha)
    penalty = alpha * math.log(logits.shape[1]) / (2 * lam0) * (updated - lam0) ** 2
    losses = ldr_kl_per_sample(scaled, labels, updated, margin) - penalty
    return reduce_losses(losses, reduction, sample_weight), updated
