"""LDAM loss modules: multi-label (TransICD) and single-label (Cao et al.), with DRW-ready class weights."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hf_margin.functional.ldam import (
    check_ldam_options,
    effective_number_weights,
    ldam_loss,
    ldam_margins,
    multilabel_ldam_loss,
)


class _ClassBalanced(nn.Module):
    """Holds the class counts, the margins and the class weights that DRW switches on."""

    class_counts: Tensor
    margins: Tensor
    class_weights: Tensor

    def __init__(self, class_counts: Tensor | list[int] | list[float], margins: Tensor) -> None:
        super().__init__()
        # Saved with the model: a checkpoint keeps its margins and, mid-DRW, its class weights.
        self.register_buffer("class_counts", torch.as_tensor(class_counts, dtype=torch.float32, device="cpu"))
        self.register_buffer("margins", margins)
        self.register_buffer("class_weights", torch.ones_like(margins))

    def set_deferred_weights(self, beta: float | None) -> None:
        """DRW: effective-number weights with this beta, or uniform weights for None."""
        if beta is None:
            self.class_weights.fill_(1.0)
        else:
            self.class_weights.copy_(effective_number_weights(self.class_counts, beta))


class MultiLabelLDAMLoss(_ClassBalanced):
    """TransICD's multi-label LDAM: BCE-with-logits after subtracting ``C / n_j^(1/4)`` from positive logits.

    TransICD (arXiv 2104.10652); C = 3 as in the official code; C = 0 is plain BCE-with-logits.

    Args:
        class_counts: training documents per label (0 is treated as 1).
        c: the margin constant C.

    Example:
        >>> loss = MultiLabelLDAMLoss([900, 40, 3], c=3.0)
        >>> loss(torch.randn(2, 3), torch.tensor([[1, 0, 1], [0, 1, 0]]))
    """

    def __init__(self, class_counts: Tensor | list[int] | list[float], c: float = 3.0) -> None:
        super().__init__(class_counts, ldam_margins(class_counts, c=c))

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return multilabel_ldam_loss(logits, targets, self.margins, self.class_weights)


class LDAMLoss(_ClassBalanced):
    """Cao et al.'s LDAM for single-label classification: ``CE(s (z - m_y e_y), y)``, rarest class margin max_m.

    "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss" (arXiv 1906.07413).

    Args:
        class_counts: training examples per class.
        max_m: the rarest class's margin (0.5 in the paper).
        scale: s (30 in the paper, on cosine logits).

    Example:
        >>> loss = LDAMLoss([5000, 500, 50], max_m=0.5, scale=30.0)
        >>> loss(cosines, labels)
    """

    def __init__(self, class_counts: Tensor | list[int] | list[float], max_m: float = 0.5, scale: float = 30.0) -> None:
        check_ldam_options(scale)
        super().__init__(class_counts, ldam_margins(class_counts, max_m=max_m))
        self.scale = scale

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        return ldam_loss(logits, labels, self.margins, self.scale, self.class_weights)
