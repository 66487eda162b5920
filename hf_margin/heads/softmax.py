"""Softmax cross-entropy on a linear layer: the baseline every margin head is compared against."""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor, nn

from hf_margin._validation import check_embeddings, check_flags
from hf_margin.functional.margin_heads import Reduction, checked_labels, compute_dtype
from hf_margin.heads.base import MarginHead


class SoftmaxHead(MarginHead):
    """Linear classifier ``W x + b`` with cross-entropy, in the margin heads' interface (no normalisation).

    Args:
        embedding_size: dimension of the embeddings.
        num_classes: number of classes.
        bias: learn a bias per class.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> head = SoftmaxHead(512, 10)
        >>> loss = head(torch.randn(4, 512), torch.tensor([0, 1, 2, 3]))
    """

    def __init__(self, embedding_size: int, num_classes: int, bias: bool = True, reduction: Reduction = "mean") -> None:
        check_flags(bias=bias)
        super().__init__(embedding_size, num_classes, scale=1.0, reduction=reduction)
        self.bias = nn.Parameter(torch.zeros(num_classes, dtype=torch.float32)) if bias else None

    def reset_parameters(self, init: ModuleType = nn.init) -> None:
        super().reset_parameters(init)
        bias = self._parameters.get("bias")  # absent while the base class's __init__ runs
        if bias is not None:
            init.zeros_(bias)

    def _scores(self, embeddings: Tensor) -> Tensor:
        dtype = compute_dtype(embeddings, self.weight)
        bias = None if self.bias is None else self.bias.to(dtype)
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return nn.functional.linear(embeddings.to(dtype), self.weight.to(dtype), bias)

    def _checked_labels(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_embeddings(embeddings, self.embedding_size)
        return checked_labels(labels, embeddings.shape[0], self.num_classes)

    def _loss_and_scores(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        labels = self._checked_labels(embeddings, labels)
        scores = self._scores(embeddings)
        return nn.functional.cross_entropy(scores, labels, reduction=self.reduction), scores

    def margin_logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The plain linear logits (a softmax head has no margin)."""
        self._checked_labels(embeddings, labels)
        return self._scores(embeddings)

    def get_logits(self, embeddings: Tensor) -> Tensor:
        check_embeddings(embeddings, self.embedding_size)
        return self._scores(embeddings)

    def extra_repr(self) -> str:
        return f"embedding_size={self.embedding_size}, num_classes={self.num_classes}, bias={self.bias is not None}"
