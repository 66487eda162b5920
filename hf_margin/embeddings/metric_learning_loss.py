"""MetricLearningLoss: any of hf_margin's pair-based metric-learning losses (with an optional miner) as a
sentence-transformers loss for (text, class label) data, as ST's BatchAllTripletLoss takes.

The wrapped loss keeps pytorch-metric-learning's call contract (`hf_margin.losses.MetricLossBase`): the batch's
embeddings are the anchors and the reference, the miner's index tuple picks the pairs. For several processes,
build the loss and the miner with ``gather_across_processes=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor, nn

from hf_margin._extras import require

require("sentence_transformers", "st", "hf_margin.embeddings")


class MetricLearningLoss(nn.Module):
    """A pair-based metric-learning loss on a SentenceTransformer's embeddings of one text column and its labels.

    Args:
        model: the SentenceTransformer being trained.
        loss: a loss with the call contract ``loss(embeddings, labels, indices_tuple=None)``, e.g.
            ``MultiSimilarityLoss()``, ``ThresholdConsistentMarginLoss(base_loss=MultiSimilarityLoss())`` or
            ``TemperatureInfoNCELoss(0.07)`` (pytorch-metric-learning's losses work too).
        miner: optional ``miner(embeddings, labels) -> indices_tuple``, e.g. ``MultiSimilarityMiner()``.

    Example:
        >>> from hf_margin.losses import MultiSimilarityLoss, MultiSimilarityMiner
        >>> loss = MetricLearningLoss(model, MultiSimilarityLoss(), MultiSimilarityMiner())
        >>> SentenceTransformerTrainer(model=model, train_dataset=rows, loss=loss)  # rows: "text", "label"
    """

    def __init__(self, model: nn.Module, loss: nn.Module, miner: Callable[..., Any] | None = None) -> None:
        super().__init__()
        if not callable(loss):
            raise TypeError(f"`loss` must be a callable loss module, got {type(loss).__name__}")
        if miner is not None and not callable(miner):
            raise TypeError(
                f"`miner` must be callable (embeddings, labels) -> indices tuple, got {type(miner).__name__}"
            )
        self.model, self.loss, self.miner = model, loss, miner

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        features = list(sentence_features)
        if len(features) != 1:
            raise ValueError(
                f"MetricLearningLoss takes one text column and a label column (as BatchAllTripletLoss), got "
                f"{len(features)} text columns"
            )
        if labels is None:
            raise ValueError("`labels` is required: a dataset with one text column and a class-label column")
        embeddings = self.model(features[0])["sentence_embedding"]
        indices_tuple = None if self.miner is None else self.miner(embeddings, labels)
        return self.loss(embeddings, labels, indices_tuple=indices_tuple)

    def get_config_dict(self) -> dict[str, Any]:
        return {"loss": repr(self.loss), "miner": None if self.miner is None else repr(self.miner)}

    @property
    def citation(self) -> str:
        """BibTeX of the papers of the `base_loss` (if any) and the wrapped loss (their `citation` attribute, as on
        `hf_margin.losses.MetricLossBase`); empty for losses without one."""
        losses = (getattr(self.loss, "base_loss", None), self.loss)
        citations = (getattr(loss, "citation", "") for loss in losses)
        return "\n".join(dict.fromkeys(c for c in citations if isinstance(c, str) and c))
