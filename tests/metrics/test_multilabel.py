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


@pytest.mark.parametrize(
    ("k", "error", "match"),
    [
        (0, ValueError, "`k` must be an integer >= 1, got 0"),  # issue 19 item 3: was NaN
        (-1, ValueError, "`k` must be an integer >= 1, got -1"),
        (5, ValueError, "`k` must be at most the number of labels, 4; got 5"),
        (2.0, TypeError, "`k` must be an int, got float"),
        ("2", TypeError, "`k` must be an int, got str"),
    ],
)
def test_precision_at_k_rejects_a_bad_k(k: object, error: type[Exception], match: str) -> None:
    scores, targets = np.random.default_rng(0).random((3, 4)), np.eye(3, 4, dtype=int)
    with pytest.raises(error, match=match):
        precision_at_k(scores, targets, k=k)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        multilabel_metrics(scores, targets, k=k)  # type: ignore[arg-type]


def test_empty_or_wrongly_typed_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"`scores` has no samples"):
        precision_at_k(np.zeros((0, 4)), np.zeros((0, 4), dtype=int), k=1)
    with pytest.raises(TypeError, match=r"`scores` must hold real numbers, got dtype <U1"):
        precision_at_k(np.array([["a", "b"]]), np.array([[0, 1]]), k=1)
    with pytest.raises(TypeError, match=r"`threshold` must be a real number \(int or float\), got str"):
        multilabel_metrics(np.zeros((2, 2)), np.eye(2, dtype=int), threshold="0.5")  # type: ignore[arg-type]
    for threshold in (1.5, float("nan")):
        with pytest.raises(ValueError, match=r"`threshold` must lie in \[0.0, 1.0\]"):
            multilabel_metrics(np.zeros((2, 2)), np.eye(2, dtype=int), threshold=threshold)


def test_all_equal_scores_give_finite_figures_and_an_undefined_auc_is_left_out() -> None:
    targets = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 1]])
    metrics = multilabel_metrics(np.full((3, 3), 0.5), targets, k=2)
    assert metrics["micro_auc"] == 0.5 and metrics["macro_auc"] == 0.5  # the last label (always 1) is left out
    assert all(np.isfinite(v) for v in metrics.values())
    # no label has both classes: AUC is undefined and left out (it was NaN), the other figures stay finite
    ones = multilabel_metrics(np.full((2, 2), 0.7), np.ones((2, 2), dtype=int), k=1)
    assert ones == {"micro_f1": 1.0, "macro_f1": 1.0, "precision_at_1": 1.0}
    # some label has both classes: micro AUC is defined, macro AUC over those labels only
    mixed = multilabel_metrics(np.array([[0.9, 0.2], [0.1, 0.3]]), np.array([[1, 0], [0, 0]]), k=1)
    assert mixed["micro_auc"] == 1.0 and mixed["macro_auc"] == 1.0
