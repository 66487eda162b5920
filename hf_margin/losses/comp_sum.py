"""Comp-sum loss module: the tau-family through sum-exponential (0), cross-entropy (1), GCE (1 + q) and MAE (2)."""

from __future__ import annotations

from torch import Tensor, nn

from hf_margin._validation import check_choice
from hf_margin.functional.comp_sum import REDUCTIONS, check_tau, comp_sum_bound, comp_sum_loss


class CompSumLoss(nn.Module):
    """Comp-sum loss ``Phi_tau(sum_{y' != y} exp(h_y' - h_y))`` = ``(p_y^(tau - 1) - 1) / (1 - tau)``.

    "Cross-Entropy Loss Functions: Theoretical Analysis and Applications" (Mao, Mohri, Zhong, ICML 2023,
    arXiv 2304.07288). tau = 1 is cross-entropy; tau > 1 is bounded by ``1 / (tau - 1)`` (robust to label noise);
    tau < 1 is unbounded and can overflow on confidently wrong samples. The smooth adversarial comp-sum variant is
    not implemented (its extra term is not pinned down in our reference).

    Args:
        tau: tau >= 0.
        reduction: "mean" (over the batch, after per-sample weights), "sum" or "none".

    Example:
        >>> loss = CompSumLoss(tau=1.5)
        >>> loss(torch.randn(8, 5), torch.randint(0, 5, (8,)))
    """

    def __init__(self, tau: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        check_tau(tau)
        check_choice(reduction, "reduction", REDUCTIONS)
        self.tau = tau
        self.reduction = reduction

    @property
    def bound(self) -> float:
        """The loss's supremum: ``1 / (tau - 1)`` for tau > 1, inf otherwise."""
        return comp_sum_bound(self.tau)

    def forward(self, logits: Tensor, labels: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        """`sample_weight`: optional (batch,) per-sample weights."""
        return comp_sum_loss(logits, labels, self.tau, self.reduction, sample_weight)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, reduction={self.reduction!r}"
