"""Ranking metrics by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_more_hits_than_relevant_items_is_refused_not_an_ndcg_above_one() -> None:
    # issue 19 item 3: three hits for a query with one relevant item gave nDCG 2.13
    with pytest.raises(ValueError, match=r"`ranked\[0\]` marks 3 items relevant.*`relevant_counts\[0\]` is 1"):
        ranking_metrics([[True, True, True]], [1], k=3)
    # beyond the cut-off too: the list as a whole cannot hold more relevant items than exist
    with pytest.raises(ValueError, match=r"`ranked\[1\]` marks 2 items relevant"):
        ranking_metrics([[True], [True, False, True]], [1, 1], k=1)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([[True]], [1], 0), ValueError, "`k` must be an integer >= 1, got 0"),
        (([[True]], [1], 2.0), TypeError, "`k` must be an int, got float"),
        (([[True]], [-1], 1), ValueError, r"`relevant_counts\[0\]` must be an integer >= 0, got -1"),
        (([[True]], [1.5], 1), TypeError, r"`relevant_counts\[0\]` must be an int, got float"),
        (([[True]], [float("nan")], 1), TypeError, r"`relevant_counts\[0\]` must be an int, got float"),
        (([[True, float("nan")]], [1], 2), ValueError, r"`ranked\[0\]` must hold booleans"),
        (([[True, 2]], [1], 2), ValueError, r"`ranked\[0\]` must hold booleans"),
        (("TT", [1], 1), TypeError, "`ranked` must be a sequence"),
    ],
)
def test_bad_arguments_are_named(args: tuple, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ranking_metrics(*args)


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.lists(st.booleans(), max_size=12), st.integers(0, 5)), min_size=1, max_size=6),
    st.integers(1, 15),
)
def test_every_metric_lies_in_the_unit_interval(queries: list[tuple[list[bool], int]], k: int) -> None:
    ranked = [hits for hits, _ in queries]
    counts = [sum(hits) + extra for hits, extra in queries]  # at least as many relevant items as retrieved hits
    for value in ranking_metrics(ranked, counts, k).values():
        assert 0.0 <= value <= 1.0 + 1e-12


def test_lists_shorter_than_k_and_queries_without_relevant_items() -> None:
    # a list shorter than k: the missing ranks hold nothing relevant; the ideal ranking still has min(count, k) hits
    assert ranking_metrics([[True]], [2], k=5)["nDCG@5"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # no relevant item exists: every metric is 0 for that query (nothing could be found)
    assert ranking_metrics([[False, False]], [0], k=2) == {"MRR@2": 0.0, "nDCG@2": 0.0, "R@1": 0.0, "R@2": 0.0}
    # numpy rows and tensors of booleans are accepted as well
    assert ranking_metrics([np.array([False, True])], [1], k=2)["MRR@2"] == 0.5
    assert ranking_metrics([torch.tensor([False, True])], np.array([1]), k=2)["MRR@2"] == 0.5
