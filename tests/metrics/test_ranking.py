"""Ranking metrics by hand."""

from __future__ import annotations

import math

import pytest

from hf_margin.metrics import ranking_metrics


def test_hand_computed_values() -> None:
    ranked = [[False, True, False], [True, False, True], [False, False, False]]
    metrics = ranking_metrics(ranked, [1, 2, 1], k=3)
    assert metrics["MRR@3"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert metrics["R@1"] == pytest.approx(1 / 3) and metrics["R@3"] == pytest.approx(2 / 3)
    second = 1 / math.log2(3)
    ideal_two = 1 + 1 / math.log2(3)
    expected = (second / 1 + (1 + 1 / math.log2(4)) / ideal_two + 0) / 3
    assert metrics["nDCG@3"] == pytest.approx(expected)


def test_cut_off_and_errors() -> None:
    assert ranking_metrics([[False, False, True]], [1], k=2)["MRR@2"] == 0.0
    with pytest.raises(ValueError, match="equally long"):
        ranking_metrics([[True]], [1, 1])
