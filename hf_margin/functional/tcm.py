"""Threshold-Consistent Margin (TCM) regulariser on a similarity matrix.

Zhang, Xu, Tang, Fang, Wu, Tighe, Xing, "Threshold-Consistent Margin Loss for Open-World Deep Metric Learning"
(ICLR 2024, arXiv 2307.04047). Only hard pairs count, each term averaged over its hard pairs (0 if none):

``L_TCM = lambda+ sum_{s in S+, s <= m+} (m+ - s) / #{s in S+: s <= m+} + lambda- sum_{s in S-, s >= m-}
(s - m-) / #{s in S-: s >= m-}``,

added to a base metric loss. Defaults lambda+ = lambda- = 1, m+ = 0.9, m- = 0.5 are pytorch-metric-learning's;
the paper's per-dataset values could not be checked (the official code was not available), so PML's formula
is the reference.
"""

from __future__ import annotations

from torch import Tensor

from hf_margin._validation import check_number_in_range, check_pair_masks


def check_tcm_options(lambda_plus: float, lambda_minus: float, margin_plus: float, margin_minus: float) -> None:
    """Raise unless the weights are >= 0 and the thresholds lie in [-1, 1]."""
    check_number_in_range(lambda_plus, "lambda_plus", 0.0, float("inf"))
    check_number_in_range(lambda_minus, "lambda_minus", 0.0, float("inf"))
    check_number_in_range(margin_plus, "margin_plus", -1.0, 1.0)
    check_number_in_range(margin_minus, "margin_minus", -1.0, 1.0)


def tcm_hard_pairs(
    similarities: Tensor, pos_mask: Tensor, neg_mask: Tensor, margin_plus: float = 0.9, margin_minus: float = 0.5
) -> tuple[Tensor, Tensor]:
    """(hard positive mask, hard negative mask): positives with s <= m+, negatives with s >= m-."""
    check_pair_masks(similarities, pos_mask=pos_mask, neg_mask=neg_mask)
    sim = similarities.detach()
    return pos_mask & (sim <= margin_plus), neg_mask & (sim >= margin_minus)


def tcm_hinge_rows(
    similarities: Tensor,
    hard_pos: Tensor,
    hard_neg: Tensor,
    lambda_plus: float,
    lambda_minus: float,
    margin_plus: float,
    margin_minus: float,
    hard_counts: tuple[Tensor, Tensor],
) -> Tensor:
    """Each anchor's share (rows,) of the TCM loss from hard-pair masks already found (see `tcm_row_losses`)."""
    num_pos, num_neg = hard_counts
    positive = ((margin_plus - similarities) * hard_pos).sum(dim=1) / num_pos.clamp_min(1)
    negative = ((similarities - margin_minus) * hard_neg).sum(dim=1) / num_neg.clamp_min(1)
    return lambda_plus * positive + lambda_minus * negative


def tcm_row_losses(
    similarities: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    lambda_plus: float = 1.0,
    lambda_minus: float = 1.0,
    margin_plus: float = 0.9,
    margin_minus: float = 0.5,
    hard_counts: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Each anchor's share (rows,) of the TCM loss; their sum is L_TCM.

    Args:
        similarities: (rows, refs) cosine similarities.
        pos_mask / neg_mask: (rows, refs) bool positive / negative pairs.
        lambda_plus / lambda_minus: weights (>= 0) of the positive / negative term.
        margin_plus / margin_minus: similarity thresholds m+ / m- in [-1, 1].
        hard_counts: the numbers of hard positive / negative pairs to average over (default: those in this
            matrix; pass the counts over all processes when the rows are split across them).
    """
    check_tcm_options(lambda_plus, lambda_minus, margin_plus, margin_minus)
    hard_pos, hard_neg = tcm_hard_pairs(similarities, pos_mask, neg_mask, margin_plus, margin_minus)
    counts = hard_counts if hard_counts is not None else (hard_pos.sum(), hard_neg.sum())
    return tcm_hinge_rows(
        similarities, hard_pos, hard_neg, lambda_plus, lambda_minus, margin_plus, margin_minus, counts
    )


def threshold_consistent_margin_loss(
    similarities: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor,
    lambda_plus: float = 1.0,
    lambda_minus: float = 1.0,
    margin_plus: float = 0.9,
    margin_minus: float = 0.5,
) -> Tensor:
    """The TCM loss (a scalar) over the given positive and negative pairs.

    Example:
        >>> sim = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
        >>> same = labels[:, None] == labels[None]
        >>> pos = same & ~torch.eye(len(labels), dtype=torch.bool)
        >>> loss = threshold_consistent_margin_loss(sim, pos, ~same)
    """
    rows = tcm_row_losses(similarities, pos_mask, neg_mask, lambda_plus, lambda_minus, margin_plus, margin_minus)
    return rows.sum()
