"""UNPG: in-batch negative pairs appended to a margin-softmax head's logits, after a box-and-whisker filter.

Paper: Jung, Lee, Lee, Kang, "Unified Negative Pair Generation toward Well-discriminative Feature Space for Face
Recognition", arXiv 2203.11593 (official code ``Jung-Jun-Uk/UNPG``; these functions are written from its formulas).

With ``S_n = {cos(x_i, x_j) : i < j, y_i != y_j}`` (the batch's feature-feature negative pairs), sorted, and the
index-based quartiles ``Q1 = S_n[int(0.25 l)]``, ``Q3 = S_n[int(0.75 l)]`` (``l = |S_n|``, not interpolated),
the kept set is ``S'_n = {s : Q1 - k IQR <= s <= Q3 + k IQR}`` (k = whisker, 1.5 in the paper's head zoo). The
same ``S'_n`` is appended to every row of the head's unscaled margin cosines ``psi`` (ArcFace ``cos(theta_y + m)``,
CosFace ``cos(theta_y) - m``, ...), and

    ``L_i = -log(e^{s psi_iy} / (e^{s psi_iy} + sum_{j != y} e^{s cos theta_ij} + sum_{t in S'_n} e^{s t}))``.

The appended columns are the same for every row, so they enter as one log-sum-exp: ``L_i = base_i +
softplus(lse(s S'_n) - lse_i)`` with ``base_i`` the head's loss and ``lse_i`` its row's log-normaliser; no
(B, C + |S'_n|) matrix is built. Empty ``S'_n`` gives the base loss exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._reduction import reduce_losses
from hf_margin.functional.contrastive import labelled_pair_cosines
from hf_margin.functional.cosine_softmax import check_margin_inputs, margin_cross_entropy_of_checked


def check_whisker(whisker: float) -> None:
    """Raise unless `whisker` is a number (not NaN); +-inf are allowed (keep every / no negative pair)."""
    if isinstance(whisker, bool) or not isinstance(whisker, int | float):
        raise TypeError(f"`whisker` must be a number (the paper uses 1.5), got {type(whisker).__name__} {whisker!r}")
    if math.isnan(whisker):
        raise ValueError(f"`whisker` must be a number in [-inf, inf] (the paper uses 1.5), got {whisker!r}")


def negative_pair_cosines(embeddings: Tensor, labels: Tensor) -> Tensor:
    """The cosines of every negative pair ``(i < j, y_i != y_j)`` of the batch, row-major order, shape (P,).

    Differentiable: a kept pair's gradient reaches both of its embeddings.
    """
    cosines, same = labelled_pair_cosines(embeddings, labels)
    return cosines[~same]


@torch.no_grad()
def box_and_whisker_mask(values: Tensor, whisker: float = 1.5) -> Tensor:
    """Keep-mask of ``Q1 - k IQR <= v <= Q3 + k IQR`` with the index-based quartiles ``sorted[int(q l)]``.

    ``whisker = inf`` keeps everything and ``-inf`` nothing (also when IQR = 0, where ``inf * 0`` is undefined).
    An empty `values` gives an empty mask.
    """
    check_whisker(whisker)
    if values.dim() != 1:
        raise ValueError(f"`values` must have shape (P,), got shape {tuple(values.shape)}")
    if values.numel() == 0 or math.isinf(whisker):
        return torch.full_like(values, whisker > 0, dtype=torch.bool)
    ordered = torch.sort(values).values
    length = ordered.numel()
    q1, q3 = ordered[int(0.25 * length)], ordered[int(0.75 * length)]
    spread = whisker * (q3 - q1)
    return (values >= q1 - spread) & (values <= q3 + spread)


def unpg_cross_entropy(
    cosine: Tensor,
    target: Tensor,
    labels: Tensor,
    negatives: Tensor,
    scale: float,
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """Cross-entropy of ``s [psi_i, S'_n]``: a margin head's logits with the kept negative-pair cosines appended.

    Args:
        cosine: (B, C) cosines to the class centres (the labelled entries are replaced by `target`).
        target: (B,) margin-modified target cosines ``psi_iy``, unscaled.
        labels: (B,) class indices.
        negatives: (P,) kept negative-pair cosines ``S'_n`` (P may be 0), appended to every row.
        scale: the logit scale ``s``.
        reduction: "mean", "sum" or "none".
        sample_weight: optional (B,) per-sample weights.

    Example:
        >>> s_n = negative_pair_cosines(embeddings, labels)
        >>> unpg_cross_entropy(cosine, cos_y - 0.35, labels, s_n[box_and_whisker_mask(s_n)], 64.0)
    """
    check_margin_inputs(cosine, target, labels)
    if negatives.dim() != 1:
        raise ValueError(f"`negatives` must have shape (P,), got shape {tuple(negatives.shape)}")
    base = margin_cross_entropy_of_checked(cosine, target, labels, scale, "none")
    if negatives.numel() == 0:
        return reduce_losses(base, reduction, sample_weight)
    appended = torch.logsumexp(scale * negatives.to(base.dtype), dim=0)
    row_normaliser = base + scale * target.to(base.dtype)
    return reduce_losses(base + F.softplus(appended - row_normaliser), reduction, sample_weight)
