"""CosFace (additive cosine margin) head."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor

from hf_margin.functional.margin_heads import Reduction, check_cosine_margin, cosface_target
from hf_margin.heads.base import MarginHead


class CosFaceHead(MarginHead):
    """CosFace head: target logit ``s (cos(theta_y) - m)``, others ``s cos(theta_j)``.

    Paper: Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", arXiv 1801.09414.

    Args:
        embedding_size: dimension of the embeddings.
        num_classes: number of classes (identities).
        margin: additive cosine margin ``m`` (paper and pytorch-metric-learning: 0.35; insightface: 0.40).
        scale: logit scale ``s`` (paper: 64).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> head = CosFaceHead(512, 1000, margin=0.35)
        >>> loss = head(embeddings, labels)
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        margin: float = 0.35,
        scale: float = 64.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(embedding_size, num_classes, scale, reduction)
        check_cosine_margin(margin)
        self.margin = float(margin)

    def target_fn(self, embeddings: Tensor) -> Callable[[Tensor], Tensor]:
        return partial(cosface_target, margin=self.margin)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}"
