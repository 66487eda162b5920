"""Multi-Similarity mining and loss on a similarity matrix.

Wang, Han, Huang, Dong, Scott, "Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning"
(CVPR 2019, arXiv 1904.06627). For anchor i with positives P_i and negatives N_i (cosine similarities S):

- mining: keep negative k iff ``S_ik + eps > min_{j in P_i} S_ij``, positive j iff ``S_ij - eps < max_{k in N_i} S_ik``;
- loss: ``L_i = 1/alpha log(1 + sum_{j in P_i} e^{-alpha (S_ij - lambda)}) + 1/beta log(1 + sum_{k in N_i}
  e^{beta (S_ik - lambda)})``; an anchor without positives (negatives) gets no positive (negative) term.

Defaults differ between sources: the paper reports alpha = 2, beta = 50, lambda = 1, eps = 0.1; the official
code (MalongTech/research-ms-loss) hard-codes lambda = 0.5, eps = 0.1 with alpha = 2, beta = 40;
pytorch-metric-learning uses alpha = 2, beta = 50, base (lambda) = 0.5, epsilon = 0.1. Ours are PML's, so the
anchor test compares 1:1. The official code drops positives with S >= 1 - 1e-5 (to skip self-pairs, which also
drops duplicate images); here self-pairs are excluded by index instead, as PML does.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from hf_margin._validation import check_number_in_range, check_numbers, check_pair_masks, check_positive_number
from hf_margin.functional._masked import masked_logsumexp


def log1p_sum_exp(values: Tensor, mask: Tensor) -> Tensor:
    """Row-wise ``log(1 + sum_{mask} e^{values})``, stable and 0 for rows with an empty mask; (rows,)."""
    return F.softplus(masked_logsumexp(values, mask))


def multi_similarity_mine(
    similarities: Tensor, pos_mask: Tensor, neg_mask: Tensor, epsilon: float = 0.1
) -> tuple[Tensor, Tensor]:
    """The informative pairs of Multi-Similarity mining: (hard positive mask, hard negative mask), each (rows, refs).

    Args:
        similarities: (rows, refs) cosine similarities.
        pos_mask / neg_mask: (rows, refs) bool candidate positive / negative pairs.
        epsilon: the mining margin (>= 0).

    Example:
        >>> same = labels[:, None] == labels[None]
        >>> hard_pos, hard_neg = multi_similarity_mine(sim, same & ~torch.eye(len(labels), dtype=torch.bool), ~same)
    """
    check_pair_masks(similarities, pos_mask=pos_mask, neg_mask=neg_mask)
    check_number_in_range(epsilon, "epsilon", 0.0, float("inf"))
    if similarities.shape[1] == 0:  # no reference rows: no pairs to mine
        return pos_mask.clone(), neg_mask.clone()
    sim = similarities.detach()
    hardest_pos = sim.masked_fill(~pos_mask, float("inf")).amin(dim=1, keepdim=True)
    hardest_neg = sim.masked_fill(~neg_mask, float("-inf")).amax(dim=1, keepdim=True)
    return pos_mask & (sim - epsilon < hardest_neg), neg_mask & (sim + epsilon > hardest_pos)


def check_multi_similarity_options(alpha: float, beta: float, base: float) -> None:
    """Check the MS loss's settings (`MultiSimilarityLoss` when built, the function on every call)."""
    check_positive_number(alpha, "alpha")
    check_positive_number(beta, "beta")
    check_numbers(base=base)
    if not abs(base) < float("inf"):
        raise ValueError(f"`base` must be a finite number, got {base}")


def multi_similarity_loss(
    similarities: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
) -> Tensor:
    """Per-anchor Multi-Similarity losses (rows,) over the given pairs (mine first to get the paper's loss).

    Args:
        similarities: (rows, refs) cosine similarities (float32 or float64; upcast bf16/fp16 first).
        pos_mask / neg_mask: (rows, refs) bool positive / negative pairs to use.
        alpha: positive temperature (> 0).
        beta: negative temperature (> 0).
        base: the similarity offset lambda.

    Example:
        >>> losses = multi_similarity_loss(sim, *multi_similarity_mine(sim, pos, neg))  # mean() is PML's value
    """
    check_pair_masks(similarities, pos_mask=pos_mask, neg_mask=neg_mask)
    check_multi_similarity_options(alpha, beta, base)
    positive = log1p_sum_exp(-alpha * (similarities - base), pos_mask) / alpha
    negative = log1p_sum_exp(beta * (similarities - base), neg_mask) / beta
    return positive + negative
