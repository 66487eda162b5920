"""sentence-transformers integration: the margin embedding losses and hard-negative mining (the `st` extra).

Imported on first use, so that `import hf_margin` works without sentence-transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "MarginEmbeddingLoss": "hf_margin.embeddings.margin_embedding_loss",
    "CachedMarginEmbeddingLoss": "hf_margin.embeddings.cached_margin_embedding_loss",
    "mine_hard_negatives": "hf_margin.embeddings.hard_negatives",
    "MetricLearningLoss": "hf_margin.embeddings.metric_learning_loss",
    "add_teacher_scores": "hf_margin.embeddings.hard_negatives",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_margin.embeddings' has no attribute {name!r}")


__all__ = [
    "CachedMarginEmbeddingLoss",
    "MarginEmbeddingLoss",
    "MetricLearningLoss",
    "add_teacher_scores",
    "mine_hard_negatives",
]
