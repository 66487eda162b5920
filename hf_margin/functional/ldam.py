"""LDAM margins for class imbalance, single-label (Cao et al.) and multi-label (TransICD), and DRW's class weights.

- LDAM: Cao, Wei, Gaidon, Arechiga, Ma, "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss"
  (NeurIPS 2019, arXiv 1906.07413): margins ``m_j = C / n_j^(1/4)``, in practice normalised so that the rarest
  class gets ``max_m``; ``loss = CE(s (z - m_y e_y), y)`` (scale s = 30 on a cosine classifier in the paper).
- TransICD: Biswas, Pham, Zhang, "TransICD: Transformer Based Code-wise Attention Model for Explainable ICD
  Coding" (arXiv 2104.10652): ``z~_ij = z_ij - y_ij C / n_j^(1/4)`` (C = 3, n_j = 0 counted as 1), then
  binary cross-entropy with logits; no scale, no re-weighting.
- DRW (same LDAM paper): from a given epoch on, class weights ``(1 - beta) / (1 - beta^n_j)`` (Cui et al.'s
  effective number, beta = 0.9999), renormalised to sum to the number of classes; uniform before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS
from hf_margin._validation import (
    check_choice,
    check_class_labels,
    check_embeddings,
    check_number_in_range,
    check_positive_number,
)


def _counts(class_counts: Tensor | list[int] | list[float]) -> Tensor:
    # Explicitly on the CPU: models are built under torch's meta device by `from_pretrained`.
    counts = torch.as_tensor(class_counts, dtype=torch.float64, device="cpu")
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"`class_counts` must be a non-empty 1-D sequence (one count per class), got {counts.shape}")
    if (counts < 0).any() or not torch.isfinite(counts).all():
        raise ValueError(f"`class_counts` must be finite and >= 0, got min {float(counts.min())}")
    return counts


def ldam_margins(
    class_counts: Tensor | list[int] | list[float],
    c: float | None = None,
    max_m: float | None = None,
    power: float = 0.25,
) -> Tensor:
    """Per-class margins ``C / n_j^power`` (counts of 0 are treated as 1).

    Give exactly one of `c` (the constant, TransICD: 3.0) or `max_m` (Cao et al.: rescale so that the rarest
    class gets max_m, 0.5 in the paper). Returns float32 margins of shape (num_classes,).
    """
    if (c is None) == (max_m is None):
        raise ValueError(f"give exactly one of `c` (TransICD) or `max_m` (Cao et al.); got c={c}, max_m={max_m}")
    check_positive_number(power, "power")
    raw = _counts(class_counts).clamp_min(1.0).pow(-power)
    if c is not None:
        check_number_in_range(c, "c", 0.0, float("inf"))
        return (c * raw).float()
    assert max_m is not None
    check_number_in_range(max_m, "max_m", 0.0, float("inf"))
    return (raw * (max_m / raw.max())).float()


def effective_number_weights(class_counts: Tensor | list[int] | list[float], beta: float = 0.9999) -> Tensor:
    """Class-balanced weights ``(1 - beta) / (1 - beta^n_j)``, normalised to sum to the number of classes.

    beta = 0 gives uniform weights; counts of 0 are treated as 1 (the weight stays finite).
    """
    check_number_in_range(beta, "beta", 0.0, 1.0 - 1e-12)
    counts = _counts(class_counts).clamp_min(1.0)
    weights = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64, device="cpu"), counts))
    return (weights * (counts.numel() / weights.sum())).float()


def multilabel_ldam_loss(
    logits: Tensor,
    targets: Tensor,
    margins: Tensor,
    class_weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """TransICD's loss: subtract each positive label's margin from its logit, then BCE with logits.

    Args:
        logits: (batch, num_labels) raw scores.
        targets: (batch, num_labels) in {0, 1}.
        margins: (num_labels,) margins (see :func:`ldam_margins`); zeros give plain BCE-with-logits.
        class_weights: optional (num_labels,) per-label weights (DRW); None is uniform.
        reduction: "mean" over batch x labels (TransICD), "sum" or "none".
    """
    _check_multilabel(logits, targets, margins, class_weights, reduction)
    logits = at_least_float32(logits)
    targets = targets.to(logits.dtype)
    shifted = logits - targets * margins.to(logits)
    weight = None if class_weights is None else class_weights.to(logits).expand_as(shifted)
    return F.binary_cross_entropy_with_logits(shifted, targets, weight=weight, reduction=reduction)


def ldam_loss(
    logits: Tensor,
    labels: Tensor,
    margins: Tensor,
    scale: float = 30.0,
    class_weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Cao et al.'s LDAM: ``CE(s (z - m_y e_y), y; weight)``; with m = 0 and s = 1 it is cross-entropy.

    Args:
        logits: (batch, num_classes) scores (cosines in the paper).
        labels: (batch,) class indices.
        margins: (num_classes,) margins (see :func:`ldam_margins` with `max_m`).
        scale: s > 0.
        class_weights: optional (num_classes,) weights (DRW).
        reduction: "mean" (weighted mean, as torch's CE), "sum" or "none". With class weights the weighted mean
            divides by the batch's own summed weights, so micro-batches under gradient accumulation or several
            processes do not add up exactly to one big batch (as with torch's weighted CE).
    """
    check_ldam_options(scale, reduction)
    check_embeddings(logits, name="logits")
    check_class_labels(labels, logits.shape[0], logits.shape[1])
    _check_vector(margins, logits.shape[1], "margins")
    if class_weights is not None:
        _check_vector(class_weights, logits.shape[1], "class_weights")
    logits = at_least_float32(logits)
    margin = margins.to(logits)[labels]
    shifted = logits.scatter_add(1, labels.unsqueeze(1), -margin.unsqueeze(1))
    weight = None if class_weights is None else class_weights.to(logits)
    return F.cross_entropy(scale * shifted, labels, weight=weight, reduction=reduction)


def check_ldam_options(scale: float, reduction: str = "mean") -> None:
    """Check LDAM's settings (`LDAMLoss` when built, :func:`ldam_loss` on every call)."""
    check_positive_number(scale, "scale")
    check_choice(reduction, "reduction", REDUCTIONS)


def _check_vector(vector: Tensor, size: int, name: str) -> None:
    if not isinstance(vector, Tensor) or tuple(vector.shape) != (size,):
        raise ValueError(f"`{name}` must have shape ({size},), got {tuple(getattr(vector, 'shape', ()))}")


def _check_multilabel(
    logits: Tensor, targets: Tensor, margins: Tensor, class_weights: Tensor | None, reduction: str
) -> None:
    check_choice(reduction, "reduction", REDUCTIONS)
    check_embeddings(logits, name="logits")
    if tuple(targets.shape) != tuple(logits.shape):
        raise ValueError(
            f"`targets` must be a (batch, num_labels) = {tuple(logits.shape)} 0/1 matrix, got {tuple(targets.shape)}"
        )
    if ((targets != 0) & (targets != 1)).any():
        raise ValueError("`targets` must hold only 0 and 1 (multi-hot labels)")
    _check_vector(margins, logits.shape[1], "margins")
    if class_weights is not None:
        _check_vector(class_weights, logits.shape[1], "class_weights")
