"""Multi-Similarity miner and loss modules with pytorch-metric-learning's call contract.

Wang et al., "Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning" (CVPR 2019,
arXiv 1904.06627); math and the paper / official code / PML defaults in `hf_margin.functional.multi_similarity`.
Defaults are PML 2.9.0's (alpha = 2, beta = 50, base = 0.5, epsilon = 0.1). One documented difference from PML:
PML returns a zero loss whenever the pair tuple has at most one positive and at most one negative pair
(`GenericPairLoss`'s early exit); ours computes the loss of that single pair (or pair of pairs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hf_margin._validation import check_number_in_range
from hf_margin.functional.multi_similarity import (
    check_multi_similarity_options,
    multi_similarity_loss,
    multi_similarity_mine,
)
from hf_margin.losses.metric_learning import MetricLossBase, PairBatch, pair_batch


class MultiSimilarityLoss(MetricLossBase):
    """MS loss ``1/a log(1 + sum_P e^{-a (S - base)}) + 1/b log(1 + sum_N e^{b (S - base)})``, a=alpha, b=beta.

    Pairs come from `indices_tuple` (e.g. `MultiSimilarityMiner`'s output; the paper's loss) or, without one,
    from all label pairs. Cosine similarity; "mean" averages over all anchors, as PML does.

    Args:
        alpha: positive temperature (paper and PML 2).
        beta: negative temperature (paper and PML 50; official code 40).
        base: similarity offset lambda (PML and official code 0.5; paper 1).
        reduction / gather_across_processes: see `hf_margin.losses.metric_learning`.

    Example:
        >>> miner, loss_fn = MultiSimilarityMiner(epsilon=0.1), MultiSimilarityLoss()
        >>> loss = loss_fn(embeddings, labels, miner(embeddings, labels))
    """

    citation = (
        "@misc{multi_similarity,\n"
        "  title={Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning},\n"
        "  eprint={1904.06627},\n  archivePrefix={arXiv},\n}"
    )

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        reduction: str = "mean",
        gather_across_processes: bool = False,
    ):
        super().__init__(reduction, gather_across_processes)
        check_multi_similarity_options(alpha, beta, base)
        self.alpha, self.beta, self.base = alpha, beta, base

    def compute_loss(self, batch: PairBatch) -> Tensor:
        sim = batch.similarities()
        return multi_similarity_loss(sim, batch.pos_mask, batch.neg_mask, self.alpha, self.beta, self.base)


class MultiSimilarityMiner(nn.Module):
    """Multi-Similarity pair mining: keep pairs within `epsilon` of the hardest pair of the other kind.

    Returns PML's pair tuple ``(a1, p, a2, n)`` (anchor rows index `embeddings`; p/n index the reference, i.e.
    the gathered batch under `gather_across_processes`). Runs without gradient. The pairs are the same set as
    PML's `MultiSimilarityMiner` returns (PML orders them by similarity within each anchor, ours by index).

    Args:
        epsilon: the mining margin (0.1 in the paper, official code and PML).
        gather_across_processes: mine this process's rows against all processes' embeddings.

    Example:
        >>> a1, p, a2, n = MultiSimilarityMiner(0.1)(embeddings, labels)
    """

    def __init__(self, epsilon: float = 0.1, gather_across_processes: bool = False):
        super().__init__()
        check_number_in_range(epsilon, "epsilon", 0.0, float("inf"))
        self.epsilon = epsilon
        self.gather_across_processes = gather_across_processes

    @torch.no_grad()
    def forward(
        self, embeddings: Tensor, labels: Tensor, ref_emb: Tensor | None = None, ref_labels: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        batch = pair_batch(embeddings, labels, None, ref_emb, ref_labels, self.gather_across_processes)
        hard_pos, hard_neg = multi_similarity_mine(batch.similarities(), batch.pos_mask, batch.neg_mask, self.epsilon)
        a1, p = torch.nonzero(hard_pos, as_tuple=True)
        a2, n = torch.nonzero(hard_neg, as_tuple=True)
        return a1, p, a2, n
