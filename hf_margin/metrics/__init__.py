"""Metrics used to evaluate the methods (verification, retrieval, classification)."""

from hf_margin.metrics.embedding_geometry import tolerance, uniformity
from hf_margin.metrics.generative_probe import NaiveBayesProbe, learning_curve
from hf_margin.metrics.multilabel import (
    multilabel_compute_metrics,
    multilabel_metrics,
    precision_at_k,
    tune_threshold,
)
from hf_margin.metrics.negative_flips import (
    negative_flip_compute_metrics,
    negative_flip_metrics,
    negative_flip_rate,
    relative_negative_flip_rate,
)
from hf_margin.metrics.opis import calibration_thresholds, epsilon_opis, opis, utility_curves
from hf_margin.metrics.ranking import ranking_metrics
from hf_margin.metrics.retrieval import retrieval_metrics
from hf_margin.metrics.robustness import RobustnessResult, pgd_attack, pma_attack, pma_robust_accuracy, project_linf
from hf_margin.metrics.verification import (
    pair_scores,
    roc_curve,
    tar_at_far,
    verification_accuracy,
)

__all__ = [
    "NaiveBayesProbe",
    "RobustnessResult",
    "calibration_thresholds",
    "epsilon_opis",
    "learning_curve",
    "multilabel_compute_metrics",
    "multilabel_metrics",
    "negative_flip_compute_metrics",
    "negative_flip_metrics",
    "negative_flip_rate",
    "opis",
    "pair_scores",
    "pgd_attack",
    "pma_attack",
    "pma_robust_accuracy",
    "precision_at_k",
    "project_linf",
    "ranking_metrics",
    "relative_negative_flip_rate",
    "retrieval_metrics",
    "roc_curve",
    "tar_at_far",
    "tolerance",
    "tune_threshold",
    "uniformity",
    "utility_curves",
    "verification_accuracy",
]
