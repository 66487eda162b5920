"""Metrics used to evaluate the methods (verification, retrieval, classification)."""

from hf_margin.metrics.multilabel import (
    multilabel_compute_metrics,
    multilabel_metrics,
    precision_at_k,
    tune_threshold,
)
from hf_margin.metrics.ranking import ranking_metrics
from hf_margin.metrics.verification import (
    pair_scores,
    roc_curve,
    tar_at_far,
    verification_accuracy,
)

__all__ = [
    "multilabel_compute_metrics",
    "multilabel_metrics",
    "pair_scores",
    "precision_at_k",
    "ranking_metrics",
    "roc_curve",
    "tar_at_far",
    "tune_threshold",
    "verification_accuracy",
]
