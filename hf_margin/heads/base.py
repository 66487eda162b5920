"""The shared shape of every classification head: class centres, a loss, and logits for inference."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import torch
from torch import Tensor, nn

from hf_margin._validation import check_embeddings, check_positive_int
from hf_margin.functional.margin_heads import (
    Reduction,
    check_reduction,
    check_scale,
    cosine_matrix,
    margin_softmax_logits,
    margin_softmax_loss_and_cosine,
)


class MarginHead(nn.Module):
    """Class centres on the unit hypersphere, scored by ``scale * cos``; subclasses put a margin on the target.

    The centres are a float32 ``weight`` of shape (num_classes, embedding_size), whatever the input dtype;
    logits are computed in float32 outside autocast. Calling the head returns the cross-entropy loss (as a
    pytorch-metric-learning loss does); `get_logits` gives the margin-free logits for inference, and
    `loss_and_logits` both from one cosine computation.

    Args:
        embedding_size: dimension of the embeddings.
        num_classes: number of classes (identities).
        scale: the logit scale ``s``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample losses, e.g. for sample weights).

    Arguments are checked as the functional twins check them (one check per kind of argument, in
    `hf_margin.functional.margin_heads`). Non-finite values in a batch are not checked (that would sync the
    device every step): the loss comes out non-finite, and a head with state leaves it unchanged.
    """

    cosine_eps: float | None = None  # clamp of every cosine in the loss; AdaFace sets its eps

    def __init__(
        self, embedding_size: int, num_classes: int, scale: float = 64.0, reduction: Reduction = "mean"
    ) -> None:
        super().__init__()
        check_positive_int(embedding_size, "embedding_size")
        check_positive_int(num_classes, "num_classes")
        check_scale(scale)
        check_reduction(reduction)
        self.embedding_size = embedding_size
        self.num_classes = num_classes
        self.scale = float(scale)
        self.reduction: Reduction = reduction
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size, dtype=torch.float32))
        self.reset_parameters()

    def reset_parameters(self, init: ModuleType = nn.init) -> None:
        """Initialise the centres N(0, 0.01^2). ``init`` is `torch.nn.init` or `transformers.initialization`
        (which skips parameters already loaded from a checkpoint)."""
        init.normal_(self.weight, std=0.01)

    def target_fn(self, embeddings: Tensor) -> Callable[[Tensor], Tensor]:
        """Map the (B,) target cosines of this batch to their margin-modified values."""
        raise NotImplementedError

    def _loss_and_scores(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """The loss and the margin-free scores (cosines) of one batch."""
        return margin_softmax_loss_and_cosine(
            embeddings, self.weight, labels, self.target_fn(embeddings), self.scale, self.reduction, self.cosine_eps
        )

    def margin_logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The scaled logits with the margin applied to each row's labelled class, shape (B, C)."""
        target_fn = self.target_fn(embeddings)
        return margin_softmax_logits(embeddings, self.weight, labels, target_fn, self.scale, self.cosine_eps)[0]

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Cross-entropy of the margin logits. embeddings: (B, embedding_size); labels: (B,) of any integer dtype."""
        return self._loss_and_scores(embeddings, labels)[0]

    def loss_and_logits(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """The loss and the margin-free logits ``scale * cos`` from one pass."""
        loss, scores = self._loss_and_scores(embeddings, labels)
        return loss, self.scale * scores

    def get_logits(self, embeddings: Tensor) -> Tensor:
        """Margin-free logits ``scale * cos``, shape (B, C): what to use at inference."""
        check_embeddings(embeddings, self.embedding_size)
        return self.scale * cosine_matrix(embeddings, self.weight)

    def extra_repr(self) -> str:
        return f"embedding_size={self.embedding_size}, num_classes={self.num_classes}, scale={self.scale}"
