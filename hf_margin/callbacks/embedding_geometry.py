"""`EmbeddingGeometryCallback`: log uniformity and tolerance of a fixed evaluation set at every evaluation.

Wang & Liu, "Understanding the Behaviour of Contrastive Loss" (arXiv 2012.09740): the contrastive temperature
trades uniformity (Wang & Isola, arXiv 2005.10242) against tolerance to same-class samples; this callback tracks
both while a model trains (metrics in `hf_margin.metrics.embedding_geometry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from hf_margin._validation import check_positive, check_positive_int
from hf_margin.callbacks._evaluation_log import EvaluationMeasureCallback
from hf_margin.metrics.embedding_geometry import tolerance, uniformity

EmbedFn = Callable[[Any, Any], Tensor]


class EmbeddingGeometryCallback(EvaluationMeasureCallback):
    """Add ``<prefix>_uniformity`` and ``<prefix>_tolerance`` to every evaluation log of a `Trainer`.

    On each evaluation log (the one holding ``<prefix>_runtime``) the model embeds `inputs` in eval mode without
    gradient, `batch_size` items at a time, and the two metrics are added to the log (hence to what
    `trainer.evaluate()` returns, to ``state.log_history`` and, when the callback runs before them, to the reporting
    callbacks: add it with ``trainer.callback_handler.callbacks.insert(0, callback)`` for TensorBoard / W&B).

    Args:
        inputs: the fixed evaluation items (a Tensor, or any sequence: texts, dicts of tensors, ...).
        labels: (N,) integer classes of `inputs`, for tolerance.
        embed_fn: ``embed_fn(model, chunk) -> (len(chunk), D) Tensor``; by default ``model.encode(chunk,
            convert_to_tensor=True)`` (a sentence-transformers model).
        batch_size: items per `embed_fn` call.
        t: the uniformity kernel's scale (2).
        metric_key_prefix: the evaluation's prefix ("eval").

    Example:
        >>> callback = EmbeddingGeometryCallback(texts, labels)          # SentenceTransformerTrainer
        >>> trainer.callback_handler.callbacks.insert(0, callback)
    """

    def __init__(
        self,
        inputs: Sequence[Any] | Tensor,
        labels: Tensor,
        embed_fn: EmbedFn | None = None,
        batch_size: int = 64,
        t: float = 2.0,
        metric_key_prefix: str = "eval",
    ) -> None:
        if len(inputs) < 2 or tuple(labels.shape) != (len(inputs),):
            raise ValueError(
                f"`labels` must have shape ({len(inputs)},) (one per input, at least 2 inputs), got "
                f"{len(inputs)} inputs and labels of shape {tuple(labels.shape)}"
            )
        check_positive_int(batch_size, "batch_size")
        check_positive(t, "t")
        self.inputs, self.labels, self.embed_fn = inputs, labels, embed_fn
        self.batch_size, self.t, self.prefix = batch_size, t, metric_key_prefix

    def _embed(self, model: Any, chunk: Any) -> Tensor:
        if self.embed_fn is not None:
            return self.embed_fn(model, chunk)
        if not callable(getattr(model, "encode", None)):
            raise TypeError(f"`embed_fn` is required for a model without `encode` (got {type(model).__name__})")
        return model.encode(chunk, convert_to_tensor=True, show_progress_bar=False)

    @torch.no_grad()
    def measure(self, model: Any) -> dict[str, float]:
        """Embed the inputs with `model` (in eval mode, restored after) and return the two metrics."""
        was_training = getattr(model, "training", False)
        if was_training:
            model.eval()
        try:
            chunks = [
                self._embed(model, self.inputs[i : i + self.batch_size])
                for i in range(0, len(self.inputs), self.batch_size)
            ]
        finally:
            if was_training:
                model.train()
        embeddings = torch.cat([chunk.detach().float().cpu() for chunk in chunks])
        return {
            f"{self.prefix}_uniformity": float(uniformity(embeddings, self.t)),
            f"{self.prefix}_tolerance": float(tolerance(embeddings, self.labels.cpu())),
        }
