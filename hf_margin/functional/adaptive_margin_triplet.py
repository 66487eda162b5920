"""M2FNet's adaptive-margin triplet loss with VICReg-style variance and covariance terms.

Chudasama et al., "M2FNet: Multi-modal Fusion Network for Emotion Recognition in Conversation" (CVPR Workshops
2022, arXiv 2206.02187), section 3.3, Eqs. (9)-(13). For triplets (a, p, n) with Euclidean distances d:

- Eq. (10): ``L_AMT = d_ap - (d_an + d_pn) / 2 + m_AM``, averaged over the triplets;
- Eq. (11): ``m_AM = m_sim + m_dissim``, ``m_sim = 1 + 2 exp(-4 d_ap)``, ``m_dissim = 1 + 2 exp(4 d_an - 4)``;
- Eq. (12): ``L_Var = sum_{k in a,p,n} 1/d sum_j [1 - sqrt(Var(Z_k[:, j]) + eps)]`` (unbiased variance);
- Eq. (13): ``L_Cov = sum_k 1/d sum_{i != j} Cov(Z_k)_ij^2`` (the printed superscript T read as a square);
- Eq. (9): ``L = 20 L_AMT + 5 L_Cov + 1 L_Var``.

The paper prints Eq. (10) and Eq. (12) without a hinge and lets gradients flow through m_AM. Under that literal
form a triplet's optimum puts the negative closer than the positive (``dL/d d_an = -1/2 + 8 e^{4 d_an - 4}`` pulls
far negatives in; ``dL/d d_ap = 1 - 8 e^{-4 d_ap}`` pushes close positives apart). `hinge` (``max(0, .)`` on
Eq. 10), `detach_margin` (no gradient through m_AM) and `variance_hinge` (VICReg's ``max(0, 1 - std)``) select the
other readings; docs/methods/m2fnet_triplet.md shows which one trains.

Our choices where the paper is silent: Euclidean distance with a zero gradient where two points coincide;
eps = 1e-4 (VICReg's); the exponent of m_dissim capped at 80 (d_an > 21) so that float32 stays finite; a set of
fewer than two triplets has variance and covariance terms 0 (the unbiased variance needs two rows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32, full_precision
from hf_margin._validation import check_embeddings, check_flags, check_number_in_range, check_positive_number
from hf_margin.functional.few_shot import pairwise_euclidean

MAX_EXPONENT = 80.0
"""Cap on ``4 d_an - 4`` in m_dissim: e^80 ~ 5.5e34 keeps the margin, and 20 times a mean of it, finite in float32
(3.4e38). The cap binds only beyond d_an = 21; on L2-normalised embeddings (d <= 2) m_dissim <= 1 + 2 e^4."""


def adaptive_margin(d_ap: Tensor, d_an: Tensor) -> Tensor:
    """Eq. (11): ``m_AM = (1 + 2 exp(-4 d_ap)) + (1 + 2 exp(4 d_an - 4))``, elementwise (broadcasting)."""
    similar = 1 + 2 * torch.exp(-4 * d_ap)
    dissimilar = 1 + 2 * torch.exp((4 * d_an - 4).clamp(max=MAX_EXPONENT))
    return similar + dissimilar


def adaptive_margin_triplet_terms(
    d_ap: Tensor,
    d_an: Tensor,
    d_pn: Tensor,
    margin: float | None = None,
    hinge: bool = False,
    detach_margin: bool = False,
) -> Tensor:
    """Eq. (10) per triplet: ``d_ap - (d_an + d_pn) / 2 + m``, with m = m_AM (Eq. 11) or the fixed `margin`.

    Args:
        d_ap / d_an / d_pn: anchor-positive, anchor-negative and positive-negative distances (broadcastable).
        margin: None for the adaptive margin m_AM; a number for a fixed margin (the neutral setting).
        hinge: ``max(0, .)`` around the term (not in the paper).
        detach_margin: no gradient through m_AM (not in the paper).
    """
    if margin is None:
        m_am = adaptive_margin(d_ap, d_an)
        offset: Tensor | float = m_am.detach() if detach_margin else m_am
    else:
        offset = margin
    terms = d_ap - (d_an + d_pn) / 2 + offset
    return F.relu(terms) if hinge else terms


def _weighted_covariance(z: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Unbiased (d, d) covariance of the rows of `z` each repeated `weights` times, and the total weight."""
    total = weights.sum()
    mean = (weights.unsqueeze(1) * z).sum(0) / total.clamp(min=1)
    centred = z - mean
    return (weights.unsqueeze(1) * centred).T @ centred / (total - 1).clamp(min=1), total


def variance_term(z: Tensor, weights: Tensor, eps: float = 1e-4, hinge: bool = False) -> Tensor:
    """Eq. (12) for one stack Z: ``1/d sum_j [1 - sqrt(Var_j + eps)]`` (``max(0, .)`` inside with `hinge`).

    Rows count `weights` times (the triplets they appear in); fewer than two rows in all give 0.
    """
    covariance, total = _weighted_covariance(z, weights)
    gap = 1 - torch.sqrt(covariance.diagonal() + eps)
    value = (F.relu(gap) if hinge else gap).mean()
    return torch.where(total >= 2, value, torch.zeros_like(value))


def covariance_term(z: Tensor, weights: Tensor) -> Tensor:
    """Eq. (13) for one stack Z: ``1/d sum_{i != j} Cov_ij^2``; rows count `weights` times (< 2 rows: 0)."""
    covariance, total = _weighted_covariance(z, weights)
    off_diagonal = covariance.pow(2).sum() - covariance.diagonal().pow(2).sum()
    value = off_diagonal / z.shape[1]
    return torch.where(total >= 2, value, torch.zeros_like(value))


def check_adaptive_margin_options(
    margin: float | None,
    amt_weight: float,
    cov_weight: float,
    var_weight: float,
    eps: float,
    hinge: bool,
    detach_margin: bool,
    variance_hinge: bool,
) -> None:
    """Check the loss's settings (`AdaptiveMarginTripletLoss` when built, the function on every call)."""
    if margin is not None:
        check_number_in_range(margin, "margin", -float("inf"), float("inf"))
    for name, value in (("amt_weight", amt_weight), ("cov_weight", cov_weight), ("var_weight", var_weight)):
        check_number_in_range(value, name, 0.0, float("inf"))
    check_positive_number(eps, "eps")
    check_flags(hinge=hinge, detach_margin=detach_margin, variance_hinge=variance_hinge)


def combine_terms(
    amt: Tensor,
    triplet_mask: Tensor | None,
    stacks: tuple[tuple[Tensor, Tensor], ...],
    amt_weight: float,
    cov_weight: float,
    var_weight: float,
    eps: float,
    variance_hinge: bool,
) -> Tensor:
    """Eq. (9): ``amt_weight mean(L_AMT) + cov_weight L_Cov + var_weight L_Var`` over the stacks (Z_a, Z_p, Z_n).

    `triplet_mask` (shaped as `amt`, or None for all) picks the triplets; each stack is (rows, row weights).
    The mean divides before it sums: a sum of margins near their cap would overflow float32 first.
    """
    if triplet_mask is None:
        mean_amt = (amt / amt.numel()).sum()
    else:
        share = amt / triplet_mask.sum().clamp(min=1)
        mean_amt = torch.where(triplet_mask, share, torch.zeros_like(share)).sum()
    cov = torch.stack([covariance_term(z, w) for z, w in stacks]).sum()
    var = torch.stack([variance_term(z, w, eps, variance_hinge) for z, w in stacks]).sum()
    return amt_weight * mean_amt + cov_weight * cov + var_weight * var


def row_distances(x: Tensor, y: Tensor) -> Tensor:
    """(N,) Euclidean distances between matching rows, with a zero (not NaN) gradient where they coincide."""
    squared = (x - y).pow(2).sum(-1)
    positive = squared > 0
    return torch.where(positive, torch.where(positive, squared, torch.ones_like(squared)).sqrt(), 0.0)


def adaptive_margin_triplet_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float | None = None,
    amt_weight: float = 20.0,
    cov_weight: float = 5.0,
    var_weight: float = 1.0,
    eps: float = 1e-4,
    hinge: bool = True,
    detach_margin: bool = True,
    variance_hinge: bool = True,
) -> Tensor:
    """M2FNet's feature-extractor loss (Eq. 9) over N explicit triplets: the rows of anchor, positive, negative.

    Args:
        anchor / positive / negative: (N, d) representations Z_a, Z_p, Z_n.
        margin: None for the adaptive margin (the paper); a number for a fixed margin.
        amt_weight / cov_weight / var_weight: lambda_1, lambda_2, lambda_3 (paper 20 / 5 / 1).
        eps: added to the variance under the square root (1e-4, VICReg's; the paper does not give it).
        hinge / detach_margin / variance_hinge: the readings of Eqs. (10)-(12), see the module docstring; all
            False is the printed form.

    Example:
        >>> loss = adaptive_margin_triplet_loss(model(a), model(p), model(n))
    """
    check_adaptive_margin_options(margin, amt_weight, cov_weight, var_weight, eps, hinge, detach_margin, variance_hinge)
    check_embeddings(anchor, name="anchor")
    check_embeddings(positive, anchor.shape[1], name="positive")
    check_embeddings(negative, anchor.shape[1], name="negative")
    if not anchor.shape == positive.shape == negative.shape:
        raise ValueError(
            f"`anchor`, `positive` and `negative` must have the same shape (triplets, dim), got "
            f"{tuple(anchor.shape)}, {tuple(positive.shape)} and {tuple(negative.shape)}"
        )
    with full_precision(anchor):
        a, p, n = (at_least_float32(z) for z in (anchor, positive, negative))
        amt = adaptive_margin_triplet_terms(
            row_distances(a, p), row_distances(a, n), row_distances(p, n), margin, hinge, detach_margin
        )
        ones = torch.ones(a.shape[0], dtype=a.dtype, device=a.device)
        stacks = ((a, ones), (p, ones), (n, ones))
        return combine_terms(amt, None, stacks, amt_weight, cov_weight, var_weight, eps, variance_hinge)


def all_triplets_adaptive_margin_loss(
    embeddings: Tensor,
    ref_emb: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    margin: float | None = None,
    amt_weight: float = 20.0,
    cov_weight: float = 5.0,
    var_weight: float = 1.0,
    eps: float = 1e-4,
    hinge: bool = True,
    detach_margin: bool = True,
    variance_hinge: bool = True,
) -> Tensor:
    """Eq. (9) over every triplet (a, p, n) with ``pos_mask[a, p] and neg_mask[a, n]``, without listing them.

    Equal to `adaptive_margin_triplet_loss` on the listed triplets (each row of Z_a, Z_p, Z_n counted as often as
    it appears), but with (B, R, R) tensors instead of a host-synchronising `nonzero`.

    Args:
        embeddings: (B, D) anchors; ref_emb: (R, D) positives and negatives.
        pos_mask / neg_mask: (B, R) bool pairs.
        the rest: as `adaptive_margin_triplet_loss`.
    """
    with full_precision(embeddings):
        x, ref = at_least_float32(embeddings), at_least_float32(ref_emb)
        to_ref = pairwise_euclidean(x, ref)
        amt = adaptive_margin_triplet_terms(
            to_ref.unsqueeze(2),
            to_ref.unsqueeze(1),
            pairwise_euclidean(ref, ref).unsqueeze(0),
            margin,
            hinge,
            detach_margin,
        )
        triplets = pos_mask.unsqueeze(2) & neg_mask.unsqueeze(1)
        counts = triplets.to(x.dtype)
        stacks = ((x, counts.sum((1, 2))), (ref, counts.sum((0, 2))), (ref, counts.sum((0, 1))))
        return combine_terms(amt, triplets, stacks, amt_weight, cov_weight, var_weight, eps, variance_hinge)
