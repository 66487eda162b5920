"""The evidence statistics: Student-t intervals recomputed from textbook values and by hand, pairing, verdicts."""

from __future__ import annotations

import math

import pytest

from hf_margin.demo.evidence_stats import Interval, claim_verdict, mean_interval, paired_difference, t_quantile


@pytest.mark.parametrize(("df", "expected"), [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_quantile_matches_the_printed_table(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_mean_interval_by_hand() -> None:
    values = [0.61, 0.64, 0.62]
    interval = mean_interval(values)
    mean = sum(values) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)
    assert interval.mean == pytest.approx(mean)
    assert (interval.low, interval.high) == pytest.approx((mean - half, mean + half))
    assert interval.half_width == pytest.approx(half)
    assert interval.n == 3 and interval.level == 0.95
    assert interval.format() == f"{mean:.3f} [{mean - half:.3f}, {mean + half:.3f}] (n=3)"


def test_a_wider_level_gives_a_wider_interval() -> None:
    values = [1.0, 2.0, 4.0, 3.0]
    assert mean_interval(values, 0.99).half_width > mean_interval(values, 0.95).half_width > 0


def test_paired_difference_removes_the_shared_seed_effect() -> None:
    # seeds differ a lot, the method is always 0.01 above: unpaired intervals overlap, the paired one does not
    baseline = [0.50, 0.70, 0.60]
    method = [0.51, 0.71, 0.61]
    assert mean_interval(method).low < mean_interval(baseline).high
    difference = paired_difference(method, baseline)
    assert difference.mean == pytest.approx(0.01)
    assert difference.half_width == pytest.approx(0.0, abs=1e-12)
    assert difference.verdict() == "better" and claim_verdict(difference) == "reproduced"


@pytest.mark.parametrize(
    ("method", "verdict", "claim"),
    [
        ([0.40, 0.61, 0.49], "worse", "contradicted"),
        ([0.52, 0.68, 0.61], "no difference", "not reproduced at this scale"),
    ],
)
def test_verdicts(method: list[float], verdict: str, claim: str) -> None:
    difference = paired_difference(method, [0.50, 0.70, 0.60])
    assert difference.verdict() == verdict and claim_verdict(difference) == claim


def test_interval_verdict_edges() -> None:
    assert Interval(0.0, 0.0, 0.0, 3, 0.95).verdict() == "no difference"
    assert Interval(1.0, 0.5, 1.5, 3, 0.95).verdict() == "better"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mean_interval([0.5]), "`values` needs at least 2 values"),
        (lambda: mean_interval([0.5, float("nan")]), "`values` must be finite"),
        (lambda: mean_interval([0.5, 0.6], level=1.0), "`level` must be in"),
        (lambda: paired_difference([0.5, 0.6, 0.7], [0.5, 0.6]), "paired by seed .* got 3 and 2"),
        (lambda: paired_difference([0.5, 0.6], [0.5, float("inf")]), "`baseline` must be finite"),
        (lambda: t_quantile(0.975, 0), "`degrees_of_freedom` must be a positive int"),
        (lambda: t_quantile(1.5, 3), "`probability` must be in"),
    ],
)
def test_bad_input_is_an_error_naming_the_argument(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
