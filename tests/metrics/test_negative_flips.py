"""Negative-flip metrics: hand-counted example, bounds (0 <= NFR <= 1 - ER_old), NFR = 0 when the new model keeps
the old-correct predictions, relative NFR near 1 for independent errors, the Trainer compute_metrics helper
(old-class restriction), errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from hf_margin.metrics.negative_flips import (
    negative_flip_compute_metrics,
    negative_flip_metrics,
    negative_flip_rate,
    relative_negative_flip_rate,
)


def test_hand_counted_example() -> None:
    labels = [0, 1, 2, 3, 0]
    old = [0, 1, 2, 0, 1]  # right on 0..2
    new = [0, 2, 2, 3, 0]  # breaks sample 1, fixes 3 and 4
    assert negative_flip_rate(old, new, labels) == pytest.approx(1 / 5)
    metrics = negative_flip_metrics(torch.tensor(old), np.array(new), labels)
    assert metrics["old_error_rate"] == pytest.approx(0.4) and metrics["new_error_rate"] == pytest.approx(0.2)
    assert metrics["relative_negative_flip_rate"] == pytest.approx(0.2 / (0.6 * 0.2))
    assert relative_negative_flip_rate(labels, labels, labels) == 0.0, "no new errors: denominator 0 gives 0"


def test_bounds_and_kept_predictions() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels, old, new = (rng.integers(0, 4, 50) for _ in range(3))
        metrics = negative_flip_metrics(old, new, labels)
        assert 0 <= metrics["negative_flip_rate"] <= 1 - metrics["old_error_rate"] + 1e-12
        kept = np.where(old == labels, old, new)
        assert negative_flip_rate(old, kept, labels) == 0


def test_relative_nfr_is_one_for_independent_errors() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 200_000)
    old_right, new_right = rng.random(labels.size) < 0.7, rng.random(labels.size) < 0.8
    old = np.where(old_right, labels, (labels + 1) % 10)
    new = np.where(new_right, labels, (labels + 2) % 10)
    assert relative_negative_flip_rate(old, new, labels) == pytest.approx(1.0, abs=0.02)
    assert negative_flip_rate(old, new, labels) == pytest.approx(0.7 * 0.2, abs=0.005)


def test_compute_metrics_counts_flips_on_old_classes() -> None:
    labels = np.array([0, 1, 2, 3])
    old = np.array([0, 1, 0, 1])  # the old model has classes 0, 1 only
    logits = np.eye(4)[[0, 2, 2, 3]]  # new predictions: breaks sample 1
    metrics = negative_flip_compute_metrics(old, num_old_classes=2)(EvalPrediction(logits, labels))
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["negative_flip_rate"] == pytest.approx(0.5), "one flip among the two old-class samples"
    everything = negative_flip_compute_metrics(old)(EvalPrediction((logits, logits), labels))
    assert everything["negative_flip_rate"] == pytest.approx(0.25)


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="`new_predictions`"):
        negative_flip_rate([0, 1], [0], [0, 1])
    with pytest.raises(ValueError, match="`old_predictions`"):
        negative_flip_rate([0.5, 1.0], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="`labels`"):
        negative_flip_rate([], [], [])
    with pytest.raises(ValueError, match="`label_ids`"):
        negative_flip_compute_metrics([0, 1])(EvalPrediction(np.eye(3), np.array([0, 1, 2])))


def test_no_old_class_sample_is_named_in_the_error() -> None:
    """Every evaluated label is a new class: the error says so, not that `labels` is empty."""
    compute = negative_flip_compute_metrics([0, 1, 0], num_old_classes=2)
    with pytest.raises(ValueError, match=r"no evaluation sample has a label < num_old_classes \(2\)"):
        compute(EvalPrediction(np.eye(4)[[2, 3, 2]], np.array([2, 3, 3])))
