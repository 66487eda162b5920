"""M2FNet's adaptive-margin triplet loss as a metric loss with pytorch-metric-learning's call contract.

Chudasama et al., "M2FNet: Multi-modal Fusion Network for Emotion Recognition in Conversation" (CVPR Workshops
2022, arXiv 2206.02187); math, the paper's printed form and our choices in
`hf_margin.functional.adaptive_margin_triplet`.
"""

from __future__ import annotations

from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin.functional.adaptive_margin_triplet import (
    adaptive_margin_triplet_loss,
    all_triplets_adaptive_margin_loss,
    check_adaptive_margin_options,
)
from hf_margin.losses.metric_learning import IndicesTuple, MetricLossBase, pair_batch


class AdaptiveMarginTripletLoss(MetricLossBase):
    """``L = 20 L_AMT + 5 L_Cov + 1 L_Var``: the triplet term ``d_ap - (d_an + d_pn)/2 + m_AM`` with the adaptive
    margin ``m_AM = 1 + 2 e^{-4 d_ap} + 1 + 2 e^{4 d_an - 4}``, plus VICReg-style covariance and variance terms
    on the anchor, positive and negative representations (Euclidean distances).

    Triplets: an `indices_tuple` of triplets ``(a, p, n)`` (e.g. a triplet miner's) is used as listed; a pair
    tuple ``(a1, p, a2, n)`` (e.g. `MultiSimilarityMiner`'s) or labels alone give every triplet whose (a, p) is
    a positive and (a, n) a negative pair, as PML does. The value is one batch-level scalar (the variance and
    covariance terms do not split per anchor), so there is no `reduction` and no `gather_across_processes`.

    Defaults are what trains (docs/methods/m2fnet_triplet.md): hinge on the triplet term, no gradient through
    the margin, VICReg's hinged variance. ``hinge=False, detach_margin=False, variance_hinge=False`` is the
    printed form. With a fixed `margin`, ``cov_weight = var_weight = 0`` and ``amt_weight = 1`` the loss is the
    triplet hinge ``max(0, d_ap - (d_an + d_pn)/2 + margin)`` averaged over the triplets.

    The value can be huge (1e31 in a log is normal) and is not a measure of progress: ``m_dissim =
    1 + 2 e^{4 d_an - 4}`` grows exponentially with the distance to the negatives (20 times it is 1e31 at
    d_an ~ 18), and with the default detached margin it is a constant of the batch that adds no gradient. Its
    exponent is capped at 80 (d_an > 21) and the mean divides before it sums, so the value stays finite in float32
    and under bf16 autocast. Watch d_ap, d_an or a retrieval metric instead. L2-normalising the embeddings before
    the loss bounds the value (d <= 2 gives ``m_dissim <= 1 + 2 e^4 ~ 110``), but it is not the default: the
    paper's projector is an unnormalised linear layer, the variance term asks every coordinate for a standard
    deviation of 1, which the unit sphere cannot give (its total variance is at most 1), and on the sphere the
    printed form settles with the negatives closer than the positives.

    Args:
        margin: None (the paper's adaptive margin) or a fixed margin.
        amt_weight / cov_weight / var_weight: lambda_1 / lambda_2 / lambda_3 (paper 20 / 5 / 1).
        eps: under the square root of the variance (1e-4, VICReg's; not given in the paper).
        hinge: ``max(0, .)`` on the triplet term (not printed in the paper).
        detach_margin: no gradient through m_AM (the paper says nothing; its printed form lets it flow).
        variance_hinge: VICReg's ``max(0, 1 - std)`` (the paper prints ``1 - std``).

    Example:
        >>> loss_fn, miner = AdaptiveMarginTripletLoss(), MultiSimilarityMiner()
        >>> loss = loss_fn(embeddings, labels, miner(embeddings, labels))
    """

    citation = (
        "@inproceedings{chudasama2022m2fnet,\n"
        "  title={M2FNet: Multi-modal Fusion Network for Emotion Recognition in Conversation},\n"
        "  author={Chudasama, Vishal and Kar, Purbayan and Gudmalwar, Ashish and Shah, Nirmesh and Wasnik, "
        "Pankaj and Onoe, Naoyuki},\n"
        "  booktitle={CVPR Workshops},\n  year={2022},\n  eprint={2206.02187},\n  archivePrefix={arXiv},\n}"
    )

    def __init__(
        self,
        margin: float | None = None,
        amt_weight: float = 20.0,
        cov_weight: float = 5.0,
        var_weight: float = 1.0,
        eps: float = 1e-4,
        hinge: bool = True,
        detach_margin: bool = True,
        variance_hinge: bool = True,
    ):
        super().__init__("mean", gather_across_processes=False)
        check_adaptive_margin_options(
            margin, amt_weight, cov_weight, var_weight, eps, hinge, detach_margin, variance_hinge
        )
        self.margin = None if margin is None else float(margin)
        self.amt_weight, self.cov_weight, self.var_weight = float(amt_weight), float(cov_weight), float(var_weight)
        self.eps = float(eps)
        self.hinge, self.detach_margin, self.variance_hinge = bool(hinge), bool(detach_margin), bool(variance_hinge)

    def _options(self) -> tuple[float | None, float, float, float, float, bool, bool, bool]:
        """The settings in the functions' order (margin, the three weights, eps, the three flags)."""
        return (
            self.margin,
            self.amt_weight,
            self.cov_weight,
            self.var_weight,
            self.eps,
            self.hinge,
            self.detach_margin,
            self.variance_hinge,
        )

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        indices_tuple: IndicesTuple | None = None,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        batch = pair_batch(embeddings, labels, indices_tuple, ref_emb, ref_labels)
        if indices_tuple is not None and len(indices_tuple) == 3:  # listed triplets (checked by pair_batch)
            a, p, n = (index.to(embeddings.device).long() for index in indices_tuple)
            if len(a) == 0:  # nothing mined: no loss, but a graph for backward()
                return at_least_float32(embeddings).sum() * 0
            return adaptive_margin_triplet_loss(
                batch.embeddings[a], batch.ref_emb[p], batch.ref_emb[n], *self._options()
            )
        return all_triplets_adaptive_margin_loss(
            batch.embeddings, batch.ref_emb, batch.pos_mask, batch.neg_mask, *self._options()
        )

    def extra_repr(self) -> str:
        names = ("margin", "amt_weight", "cov_weight", "var_weight", "eps", "hinge", "detach_margin", "variance_hinge")
        return ", ".join(f"{name}={value}" for name, value in zip(names, self._options(), strict=True))
