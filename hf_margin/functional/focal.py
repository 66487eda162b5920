"""Focal loss, and DatasetEquity's "generalized focal" per-example weight.

- Focal loss: Lin, Goyal, Girshick, He, Dollar, "Focal Loss for Dense Object Detection" (ICCV 2017, arXiv
  1708.02002), ``-alpha_y (1 - p_y)^gamma log p_y`` on the softmax (gamma = 0 is cross-entropy; gamma = 2 in the
  paper). Class weights follow `torch.nn.functional.cross_entropy`'s convention (a weighted mean divides by the
  summed weights of the batch's labels), so gamma = 0 equals it with the same `weight`.
- Generalized focal weight: Shrivastava, Zhang, Nagesh, Parchami, "DatasetEquity: Are All Samples Created Equal?
  In The Quest For Equity Within Datasets" (ICCV-W 2023, arXiv 2308.09878): an example whose appearance is
  common (likelihood p near 1) is down-weighted, ``w = (eta + (1 - p)^gamma) / (eta + 1)`` in [eta / (eta + 1), 1]
  (README defaults eta = 1, gamma = 5; gamma = 0 gives w = 1). The likelihoods come from clustering image
  embeddings: `hf_margin.losses.equity`. Not the detection loss of Li et al. 2020 that shares the name.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS, reduce_losses
from hf_margin._validation import check_choice, check_class_labels, check_embeddings, check_number_in_range


def check_gamma(gamma: float) -> None:
    """The focusing parameter must be a number >= 0 (`FocalLoss` checks it when built, `focal_loss` per call)."""
    check_number_in_range(gamma, "gamma", 0.0, float("inf"))


def focal_loss(
    logits: Tensor,
    labels: Tensor,
    gamma: float = 2.0,
    weight: Tensor | None = None,
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """Softmax focal loss ``-w_y (1 - p_y)^gamma log p_y``.

    Args:
        logits: (batch, K) raw scores.
        labels: (batch,) class indices.
        gamma: focusing parameter >= 0 (0 is cross-entropy).
        weight: optional (K,) class weights (e.g. `effective_number_weights`: class-balanced focal).
        reduction: "mean" (divided by the summed class weights of the batch, as torch does), "sum" or "none".
        sample_weight: optional (batch,) per-example weights (e.g. generalized focal weights); with `weight`
            and "mean" both multiply, and the mean divides by the summed class weights.
    """
    check_embeddings(logits, name="logits")
    check_class_labels(labels, logits.shape[0], logits.shape[1])
    check_gamma(gamma)
    check_choice(reduction, "reduction", REDUCTIONS)
    log_p = torch.log_softmax(at_least_float32(logits), dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
    # (1 - p)^gamma through expm1 keeps precision when p is near 1; gamma = 0 gives exactly 1.
    losses = -(-torch.expm1(log_p)).clamp_min(0.0).pow(gamma) * log_p
    if weight is None:
        return reduce_losses(losses, reduction, sample_weight)
    if tuple(weight.shape) != (logits.shape[1],):
        raise ValueError(f"`weight` must have shape ({logits.shape[1]},) (one per class), got {tuple(weight.shape)}")
    class_weight = weight.to(losses)[labels]
    weighted = reduce_losses(losses * class_weight, "none", sample_weight)
    if reduction == "none":
        return weighted
    return weighted.sum() / class_weight.sum() if reduction == "mean" else weighted.sum()


def generalized_focal_weight(likelihood: Tensor, eta: float = 1.0, gamma: float = 5.0) -> Tensor:
    """DatasetEquity's per-example weight ``(eta + (1 - p)^gamma) / (eta + 1)`` for likelihoods p in [0, 1]."""
    check_number_in_range(eta, "eta", 0.0, float("inf"))
    check_number_in_range(gamma, "gamma", 0.0, float("inf"))
    p = at_least_float32(torch.as_tensor(likelihood))
    if p.numel() and (p.min() < 0 or p.max() > 1 or not torch.isfinite(p).all()):
        raise ValueError(f"`likelihood` must lie in [0, 1], got values in [{float(p.min())}, {float(p.max())}]")
    return (eta + (1.0 - p).pow(gamma)) / (eta + 1.0)
