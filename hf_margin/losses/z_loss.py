"""The Z-loss (a shift- and scale-invariant classification loss) and, separately, the logit z-loss regulariser.

The two share a name but nothing else: :class:`ZLoss` is de Brébisson & Vincent's classification loss on
standardised logits; :class:`LogitZLoss` is PaLM's ``coefficient * logsumexp(logits)^2`` auxiliary penalty.
"""

from __future__ import annotations

from torch import Tensor, nn

from hf_margin.functional.z_loss import (
    DEFAULT_EPS,
    check_logit_z_loss_options,
    check_z_loss_options,
    logit_z_loss,
    z_loss,
)


class ZLoss(nn.Module):
    """The Z-loss ``softplus(a (b - z_c)) / a`` with ``z = (o - mean o) / std o`` (a classification loss).

    "The Z-loss: a shift and scale invariant classification loss belonging to the Spherical Family"
    (de Brébisson & Vincent, arXiv 1604.08859). Invariant to ``o -> alpha o + beta`` (alpha > 0). The paper tunes
    a and b per task and our reference does not record their values, so both are required: there is no default.
    Not to be confused with :class:`LogitZLoss` (PaLM's log-partition penalty).

    Args:
        a: sharpness a > 0.
        b: target standardised score b (finite real).
        eps: > 0 added to the variance (equal logits give a finite loss).
        reduction: "mean", "sum" or "none".

    Example:
        >>> loss = ZLoss(a=1.0, b=2.0)  # pick a and b for your task
        >>> loss(torch.randn(8, 5), torch.randint(0, 5, (8,)))
    """

    def __init__(self, a: float, b: float, eps: float = DEFAULT_EPS, reduction: str = "mean") -> None:
        super().__init__()
        check_z_loss_options(a, b, eps, reduction)
        self.a = a
        self.b = b
        self.eps = eps
        self.reduction = reduction

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        return z_loss(logits, labels, self.a, self.b, eps=self.eps, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"a={self.a}, b={self.b}, eps={self.eps}, reduction={self.reduction!r}"


class LogitZLoss(nn.Module):
    """PaLM's auxiliary log-partition penalty ``coefficient * logsumexp(logits, dim=-1)^2`` (a regulariser).

    Not the Z-loss of de Brébisson & Vincent (:class:`ZLoss`): it takes no labels and only keeps the softmax
    normaliser near 1 (``log Z`` near 0); add it to the main loss. PaLM uses 1e-4; ST-MoE's router z-loss uses
    1e-3 on the router logits.

    Args:
        coefficient: >= 0.
        reduction: "mean", "sum" or "none" over every position of the leading dimensions.

    Example:
        >>> penalty = LogitZLoss(1e-4)
        >>> total = F.cross_entropy(logits, labels) + penalty(logits)
    """

    def __init__(self, coefficient: float = 1e-4, reduction: str = "mean") -> None:
        super().__init__()
        check_logit_z_loss_options(coefficient, reduction)
        self.coefficient = coefficient
        self.reduction = reduction

    def forward(self, logits: Tensor) -> Tensor:
        return logit_z_loss(logits, self.coefficient, self.reduction)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient}, reduction={self.reduction!r}"
