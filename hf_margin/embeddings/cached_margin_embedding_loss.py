"""CachedMarginEmbeddingLoss: MarginEmbeddingLoss with GradCache, for batches larger than memory allows.

Gao et al., "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup" (arXiv 2101.06983), through
sentence-transformers' own ``CachedLossMixin``: embed mini-batches without gradients, compute the loss on the
whole batch, then re-embed each mini-batch with the cached embedding gradients.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from hf_margin._extras import require
from hf_margin._validation import check_integers, check_positive_int
from hf_margin.embeddings.margin_embedding_loss import MarginEmbeddingLoss

require("sentence_transformers", "st", "hf_margin.embeddings")

from sentence_transformers.base.losses.gradcache import CachedLossMixin, has_static_embedding_input  # noqa: E402


class CachedMarginEmbeddingLoss(CachedLossMixin, nn.Module):
    """:class:`MarginEmbeddingLoss` computed on the whole batch with gradient caching (same value and gradients).

    Args:
        model: the SentenceTransformer being trained.
        mini_batch_size: texts embedded per forward pass; memory scales with it, not with the batch.
        mini_batch_num_tokens: alternatively, a token budget per mini-batch.
        show_progress_bar: show a bar over the mini-batches.
        **loss_kwargs: every option of :class:`MarginEmbeddingLoss`.

    Example:
        >>> loss = CachedMarginEmbeddingLoss(model, mini_batch_size=32, focal_gamma=2.0, mixing="pairwise")
    """

    def __init__(
        self,
        model: Any,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
        **loss_kwargs: Any,
    ) -> None:
        super().__init__()
        check_integers(mini_batch_size=mini_batch_size)
        check_positive_int(mini_batch_size, "mini_batch_size")
        if mini_batch_num_tokens is not None:
            check_integers(mini_batch_num_tokens=mini_batch_num_tokens)
            check_positive_int(mini_batch_num_tokens, "mini_batch_num_tokens")
        if has_static_embedding_input(model):
            raise ValueError("CachedMarginEmbeddingLoss cannot split StaticEmbedding inputs: use MarginEmbeddingLoss")
        self.model = model
        self.loss = MarginEmbeddingLoss(model, **loss_kwargs)
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar
        self._guide: list[Tensor] | None = None

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        features = list(sentence_features)
        self._guide = self.loss.guide_embeddings(features)
        try:
            return self.forward_cached(features, labels)
        finally:
            self._guide = None

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        embeddings = [torch.cat(column) for column in reps]
        loss = self.loss.compute_loss_from_embeddings(embeddings, labels, self._guide)
        if with_backward:
            loss.backward()
            return loss.detach()
        return loss

    def pop_statistics(self) -> dict[str, float]:
        """See :meth:`MarginEmbeddingLoss.pop_statistics`."""
        return self.loss.pop_statistics()

    @property
    def owns_generator(self) -> bool:
        """See :attr:`MarginEmbeddingLoss.owns_generator`."""
        return self.loss.owns_generator

    def generator_state(self) -> dict[str, Any] | None:
        """See :meth:`MarginEmbeddingLoss.generator_state`."""
        return self.loss.generator_state()

    def set_generator_state(self, state: dict[str, Any]) -> None:
        """See :meth:`MarginEmbeddingLoss.set_generator_state`."""
        self.loss.set_generator_state(state)

    def get_config_dict(self) -> dict[str, Any]:
        return {**self.loss.get_config_dict(), "mini_batch_size": self.mini_batch_size}

    @property
    def citation(self) -> str:
        return self.loss.citation
