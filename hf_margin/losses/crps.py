"""Almost-fair CRPS loss module (Lang et al., "AIFS-CRPS", arXiv 2412.15832); math in `hf_margin.functional.crps`."""

from __future__ import annotations

from torch import Tensor, nn

from hf_margin._reduction import REDUCTIONS
from hf_margin._validation import check_choice, check_integers, check_number_in_range
from hf_margin.functional.crps import METHODS, afcrps


class AFCRPSLoss(nn.Module):
    """Almost-fair CRPS ``alpha fCRPS + (1 - alpha) CRPS`` of an ensemble forecast against its observation.

    ``(1/M) sum_j |x_j - y| - (1 - eps)/(2M(M-1)) sum_jk |x_j - x_k|`` with eps = (1 - alpha)/M: alpha = 1 is the
    fair CRPS (degenerate: with all members but one on the observation the last one is free), alpha = 0 the standard
    ensemble CRPS (biased towards under-dispersed ensembles); the paper trains with 0.95 and M = 4 (or 2) members.

    Args:
        alpha: in [0, 1].
        member_dim: the dimension of the forecast that holds the members (the last by default).
        method: "sorted" (O(M log M) time, O(M) memory; default) or "pairwise" (the paper's eq. (4), O(M^2)).
        reduction: "mean", "sum" or "none".

    Example:
        >>> loss = AFCRPSLoss(alpha=0.95)
        >>> members = torch.stack([model(x, torch.randn(batch, 4)) for _ in range(4)], dim=-1)  # (batch, 4)
        >>> loss(members, y)  # y: (batch,)
    """

    def __init__(self, alpha: float = 0.95, member_dim: int = -1, method: str = "sorted", reduction: str = "mean"):
        super().__init__()
        check_number_in_range(alpha, "alpha", 0.0, 1.0)
        check_integers(member_dim=member_dim)
        check_choice(method, "method", METHODS)
        check_choice(reduction, "reduction", REDUCTIONS)
        self.alpha, self.member_dim, self.method, self.reduction = alpha, member_dim, method, reduction

    def forward(self, ensemble: Tensor, target: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        return afcrps(ensemble, target, self.alpha, self.member_dim, self.method, self.reduction, sample_weight)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, member_dim={self.member_dim}, method={self.method!r}"
