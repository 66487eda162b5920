"""Metrics used to evaluate the methods (verification, retrieval, classification)."""

from hf_margin.metrics.verification import (
    pair_scores,
    roc_curve,
    tar_at_far,
    verification_accuracy,
)

__all__ = ["pair_scores", "roc_curve", "tar_at_far", "verification_accuracy"]
