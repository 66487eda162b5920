"""Multi-label metrics against scikit-learn and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from hf_margin.metrics import multilabel_compute_metrics, multilabel_metrics, precision_at_k, tune_threshold


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = (rng.random((40, 6)) < 0.3).astype(int)
    targets[:, 5] = 0  # a label never present: left out of macro AUC
    scores = np.clip(0.35 * targets + rng.random((40, 6)) * 0.7, 0, 1)
    return scores, targets


def test_matches_sklearn() -> None:
    scores, targets = data()
    metrics = multilabel_metrics(scores, targets, threshold=0.5, k=3)
    predicted = (scores >= 0.5).astype(int)
    assert metrics["micro_f1"] == pytest.approx(f1_score(targets, predicted, average="micro"))
    assert metrics["macro_f1"] == pytest.approx(f1_score(targets, predicted, average="macro", zero_division=0))
    assert metrics["micro_auc"] == pytest.approx(roc_auc_score(targets.ravel(), scores.ravel()))
    assert metrics["macro_auc"] == pytest.approx(roc_auc_score(targets[:, :5], scores[:, :5], average="macro"))


def test_precision_at_k_by_hand() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.7], [0.2, 0.1, 0.9, 0.3]])
    targets = np.array([[1, 0, 0, 1], [0, 0, 0, 1]])
    assert precision_at_k(scores, targets, k=2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert precision_at_k(scores, targets, k=1) == pytest.approx(0.5)


def test_tuned_threshold_is_the_best_micro_f1() -> None:
    scores, targets = data(1)
    best = tune_threshold(scores, targets)
    best_f1 = multilabel_metrics(scores, targets, best)["micro_f1"]
    for t in np.linspace(0.05, 0.95, 19):
        assert multilabel_metrics(scores, targets, t)["micro_f1"] <= best_f1 + 1e-12


def test_compute_metrics_applies_the_sigmoid() -> None:
    class Prediction:
        predictions = (np.array([[3.0, -3.0], [-3.0, 3.0]]), np.zeros((2, 2, 4)))
        label_ids = np.array([[1, 0], [0, 1]])

    metrics = multilabel_compute_metrics(k=1, tuned=True)(Prediction())
    assert metrics["micro_f1"] == 1.0 and metrics["precision_at_1"] == 1.0 and metrics["micro_f1_tuned"] == 1.0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="both be \\(samples, labels\\)"):
        multilabel_metrics(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        multilabel_metrics(np.zeros((3, 2)), np.full((3, 2), 2))
