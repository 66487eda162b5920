"""Focal loss module (Lin et al., arXiv 1708.02002), optionally class-balanced (Cui et al.'s effective number,
arXiv 1901.05555); math in `hf_margin.functional.focal`."""

from __future__ import annotations

from torch import Tensor, nn

from hf_margin.functional.focal import check_gamma, focal_loss
from hf_margin.functional.ldam import effective_number_weights


class FocalLoss(nn.Module):
    """Softmax focal loss ``-w_y (1 - p_y)^gamma log p_y``; gamma = 0 is (weighted) cross-entropy.

    Args:
        gamma: the focusing parameter (2 in the paper).
        class_counts: optional training examples per class; with `beta`, the class weights are
            ``(1 - beta) / (1 - beta^n)`` normalised to sum to K (class-balanced loss).
        beta: the effective-number beta (0.9999 in Cui et al.); needs `class_counts`.

    Example:
        >>> FocalLoss(gamma=2.0)(logits, labels)
        >>> FocalLoss(gamma=0.0, class_counts=[5000, 50], beta=0.9999)(logits, labels)  # class-balanced CE
    """

    weight: Tensor | None

    def __init__(self, gamma: float = 2.0, class_counts: Tensor | list[int] | None = None, beta: float | None = None):
        super().__init__()
        check_gamma(gamma)
        if (class_counts is None) != (beta is None):
            raise ValueError(
                f"give both `class_counts` and `beta` for class-balanced weights, or neither; got "
                f"class_counts={'set' if class_counts is not None else None}, beta={beta}"
            )
        self.gamma = gamma
        weight = None if class_counts is None or beta is None else effective_number_weights(class_counts, beta)
        self.register_buffer("weight", weight)

    def forward(self, logits: Tensor, labels: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        weight = None if self.weight is None else self.weight.to(logits.device)
        return focal_loss(logits, labels, self.gamma, weight, sample_weight=sample_weight)
