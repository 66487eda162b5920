"""Threshold-Consistent Margin (TCM) loss module with pytorch-metric-learning's call contract.

Zhang et al., "Threshold-Consistent Margin Loss for Open-World Deep Metric Learning" (ICLR 2024, arXiv
2307.04047); math in `hf_margin.functional.tcm`. Matches PML 2.9.0's `ThresholdConsistentMarginLoss` on the
same pairs. Differences from PML 2.9.0: PML raises IndexError when `ref_emb` is given (it indexes `embeddings`
with reference indices) and always uses cosine similarity whatever distance is configured; ours supports
`ref_emb`/`ref_labels` and is cosine by construction. Pairs are masks, so a pair listed twice in an
`indices_tuple` counts once (PML counts it twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from hf_margin.functional.tcm import check_tcm_options, tcm_hard_pairs, tcm_hinge_rows
from hf_margin.losses.metric_learning import MetricLossBase, PairBatch


class ThresholdConsistentMarginLoss(MetricLossBase):
    """TCM regulariser: mean hinge of hard positives below m+ plus mean hinge of hard negatives above m-.

    ``L = lambda+ mean_{s in S+, s <= m+}(m+ - s) + lambda- mean_{s in S-, s >= m-}(s - m-)`` (a term with no hard
    pair is 0). The value is already a mean over pairs, so there is no `reduction`. With `base_loss`, the module
    returns ``base_loss(...) + L_TCM`` (the paper's use); `base_loss` must take the same PML-style arguments
    (e.g. `MultiSimilarityLoss`) and, under `gather_across_processes`, gather itself as well.

    Args:
        lambda_plus / lambda_minus: weights of the positive / negative terms (>= 0; PML 1 and 1).
        margin_plus / margin_minus: thresholds m+ / m- on the cosine similarity (PML 0.9 and 0.5).
        base_loss: optional metric loss to add TCM to.
        gather_across_processes: compare this process's rows with all processes' rows; hard-pair counts are
            summed over processes so the average over ranks equals the single-process loss.

    Example:
        >>> loss_fn = ThresholdConsistentMarginLoss(base_loss=MultiSimilarityLoss())
        >>> loss = loss_fn(embeddings, labels)
    """

    citation = (
        "@misc{tcm,\n"
        "  title={Threshold-Consistent Margin Loss for Open-World Deep Metric Learning},\n"
        "  eprint={2307.04047},\n  archivePrefix={arXiv},\n}"
    )

    def __init__(
        self,
        lambda_plus: float = 1.0,
        lambda_minus: float = 1.0,
        margin_plus: float = 0.9,
        margin_minus: float = 0.5,
        base_loss: Callable[..., Tensor] | None = None,
        gather_across_processes: bool = False,
    ):
        super().__init__("sum", gather_across_processes)
        check_tcm_options(lambda_plus, lambda_minus, margin_plus, margin_minus)
        self.lambda_plus, self.lambda_minus = lambda_plus, lambda_minus
        self.margin_plus, self.margin_minus = margin_plus, margin_minus
        self.base_loss = base_loss

    def _options(self) -> tuple[float, float, float, float]:
        return self.lambda_plus, self.lambda_minus, self.margin_plus, self.margin_minus

    def compute_loss(self, batch: PairBatch) -> Tensor:
        sim = batch.similarities()
        hard_pos, hard_neg = tcm_hard_pairs(sim, batch.pos_mask, batch.neg_mask, self.margin_plus, self.margin_minus)
        counts = (batch.global_sum(hard_pos.sum()), batch.global_sum(hard_neg.sum()))
        return tcm_hinge_rows(sim, hard_pos, hard_neg, *self._options(), hard_counts=counts)

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """TCM (plus `base_loss`) with `MetricLossBase.forward`'s PML arguments, passed on as they are."""
        tcm = super().forward(*args, **kwargs)
        return tcm if self.base_loss is None else self.base_loss(*args, **kwargs) + tcm
