"""Temperature InfoNCE (NT-Xent) with pytorch-metric-learning's call contract; math in
`hf_margin.functional.temperature_info_nce`.

Paper: Wang & Liu, "Understanding the Behaviour of Contrastive Loss" (CVPR 2021, arXiv 2012.09740): the temperature
sets how hard the loss leans on the hardest negatives (small tau: uniform but intolerant embeddings; large tau:
tolerant, locally clustered ones). Measure both with `hf_margin.metrics.embedding_geometry`.
"""

from __future__ import annotations

from torch import Tensor

from hf_margin._validation import check_positive_number
from hf_margin.functional.temperature_info_nce import info_nce_pair_losses
from hf_margin.losses.metric_learning import MetricLossBase, PairBatch


class TemperatureInfoNCELoss(MetricLossBase):
    """InfoNCE with the positive in the denominator, one term per positive pair, cosine similarity over tau.

    ``L_ap = -log(e^{s_ap/tau} / (e^{s_ap/tau} + sum_{n in N(a)} e^{s_an/tau}))``, where N(a) are the anchor's
    negative pairs (all different-label rows, or those of `indices_tuple`). Equals pytorch-metric-learning 2.9's
    `NTXentLoss` on the same pairs; PML adds its smallest normal float inside the log, which caps a pair's loss at
    ``-log(tiny)`` (87.3 in float32) where ours keeps growing as ``(s_an - s_ap) / tau``.

    Args:
        temperature: tau > 0 (PML 0.07; the paper compares 0.07 and 0.2, among others).
        reduction: "mean" over positive pairs (PML's reduction for this loss), "sum" over positive pairs, or
            "none": per-anchor sums of its pairs' losses (B,).
        gather_across_processes: compare this process's rows with all processes' (see
            `hf_margin.losses.metric_learning`); "mean" then divides by the positive pairs of all processes.

    Example:
        >>> views = torch.cat([encoder(augment(x)), encoder(augment(x))])   # SimCLR: two views per image
        >>> labels = torch.arange(len(x)).repeat(2)
        >>> loss = TemperatureInfoNCELoss(temperature=0.2)(views, labels)
    """

    def __init__(self, temperature: float = 0.07, reduction: str = "mean", gather_across_processes: bool = False):
        super().__init__(reduction, gather_across_processes)
        check_positive_number(temperature, "temperature")
        self.temperature = float(temperature)

    def compute_loss(self, batch: PairBatch) -> Tensor:
        pair_losses = info_nce_pair_losses(batch.similarities(), batch.pos_mask, batch.neg_mask, self.temperature)
        return pair_losses.sum(1)

    def reduce(self, losses: Tensor, batch: PairBatch) -> Tensor:
        if self.reduction != "mean":
            return super().reduce(losses, batch)
        pairs = batch.global_sum(batch.pos_mask.sum()).clamp_min(1)
        return losses.sum() * batch.world_size / pairs

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction}"
