"""OPIS / epsilon-OPIS (our documented reading) and their properties; a hand-computed case."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

from hf_margin.metrics.opis import calibration_thresholds, epsilon_opis, linear_quantiles, opis, utility_curves


def block_similarities(labels: torch.Tensor, within: float, between: float) -> torch.Tensor:
    same = labels[:, None] == labels[None]
    return torch.where(same, within, between).double()


def cosine(x: torch.Tensor) -> torch.Tensor:
    x = F.normalize(x.double(), dim=1)
    return x @ x.T


def test_zero_when_every_class_has_the_same_utility_curve() -> None:
    labels = torch.arange(5).repeat_interleave(4)
    sim = block_similarities(labels, 0.8, 0.1)
    assert opis(sim, labels) == 0.0
    assert epsilon_opis(sim, labels, epsilon=0.2) == 0.0


def test_invariant_to_relabelling_and_non_negative() -> None:
    x, labels = torch.randn(40, 6), torch.arange(8).repeat_interleave(5)
    sim = cosine(x)
    relabelled = torch.tensor([7, 3, 100, 5, 0, 42, 1, 2])[labels]
    assert opis(sim, labels) == pytest.approx(opis(sim, relabelled))
    assert epsilon_opis(sim, labels, 0.25) == pytest.approx(epsilon_opis(sim, relabelled, 0.25))
    assert opis(sim, labels) > 0.0 and epsilon_opis(sim, labels, 0.25) >= 0.0
    order = torch.randperm(40)
    assert opis(sim[order][:, order], labels[order]) == pytest.approx(opis(sim, labels))


def test_hand_computed_case() -> None:
    # classes 0 = {0, 1}, 1 = {2, 3}; pair similarities: (0,1)=0.9, (2,3)=0.3, negatives (0,2)=0.1, (0,3)=0.2,
    # (1,2)=0.4, (1,3)=0.0. At d = 0.25: class 0 TPR 1, TNR 3/4 -> U = 6/7; class 1 TPR 1 (0.3 >= 0.25),
    # TNR 3/4 -> U = 6/7. At d = 0.35: class 0 TPR 1, TNR 3/4 -> 6/7; class 1 TPR 0 -> U = 0.
    sim = torch.tensor([[1.0, 0.9, 0.1, 0.2], [0.9, 1.0, 0.4, 0.0], [0.1, 0.4, 1.0, 0.3], [0.2, 0.0, 0.3, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    curves = utility_curves(sim, labels, torch.tensor([0.25, 0.35]))
    torch.testing.assert_close(curves, torch.tensor([[6 / 7, 6 / 7], [6 / 7, 0.0]], dtype=torch.float64))
    variance_at = torch.tensor([0.0, (3 / 7) ** 2])  # population variance of two values: (gap / 2)^2
    # the four negatives 0.0, 0.1, 0.2, 0.4: FAR 0.25..0.5 spans the 0.75..0.5 quantiles of the negatives
    grid = calibration_thresholds(sim, labels, far_range=(0.25, 0.5), num_thresholds=3)
    torch.testing.assert_close(grid, torch.tensor([0.15, 0.2, 0.25], dtype=torch.float64))
    assert opis(sim, labels, far_range=(0.25, 0.5), num_thresholds=3) == pytest.approx(0.0)
    assert float(utility_curves(sim, labels, torch.tensor([0.35])).var(0, unbiased=False)) == pytest.approx(
        float(variance_at[1])
    )
    assert epsilon_opis(sim, labels, 0.5, far_range=(0.4, 0.5), num_thresholds=2) == pytest.approx(0.0)


def test_epsilon_opis_is_the_squared_best_worst_gap() -> None:
    sim = torch.tensor([[1.0, 0.9, 0.1, 0.2], [0.9, 1.0, 0.4, 0.0], [0.1, 0.4, 1.0, 0.3], [0.2, 0.0, 0.3, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    grid = calibration_thresholds(sim, labels, (0.01, 0.5), 11)
    curves = utility_curves(sim, labels, grid)
    expected = float((curves.max(0).values - curves.min(0).values).pow(2).mean())
    assert epsilon_opis(sim, labels, 0.5, (0.01, 0.5), 11) == pytest.approx(expected)
    assert opis(sim, labels, (0.01, 0.5), 11) == pytest.approx(expected / 4)  # two classes: variance = gap^2 / 4


def test_singleton_classes_are_left_out() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2])
    assert utility_curves(cosine(torch.randn(5, 3)), labels, torch.tensor([0.0])).shape == (2, 1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: opis(torch.randn(4, 3), torch.zeros(4, dtype=torch.long)), "square"),
        (lambda: opis(torch.eye(4), torch.zeros(3, dtype=torch.long)), r"labels.*\(4,\)"),
        (lambda: opis(torch.eye(4), torch.zeros(4, dtype=torch.long)), "single class"),
        (lambda: opis(torch.eye(4), torch.arange(4)), "two or more"),
        (lambda: opis(torch.eye(4), torch.tensor([0, 0, 1, 1]), far_range=(0.5, 0.1)), "far_range"),
        (lambda: opis(torch.eye(4), torch.tensor([0, 0, 1, 1]), num_thresholds=0), "num_thresholds"),
        (lambda: epsilon_opis(torch.eye(4), torch.tensor([0, 0, 1, 1]), epsilon=0.7), "epsilon"),
    ],
)
def test_bad_input_is_rejected(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_linear_quantiles_match_torch_quantile() -> None:
    g = torch.Generator().manual_seed(5)
    q = torch.tensor([0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0], dtype=torch.float64)
    for size in (1, 2, 7, 1000):
        values = torch.randn(size, generator=g, dtype=torch.float64)
        torch.testing.assert_close(linear_quantiles(values, q), torch.quantile(values, q), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="`values`"):
        linear_quantiles(torch.zeros(0), q)


def test_calibration_avoids_torch_quantile_and_handles_more_than_2_24_values(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = torch.arange(6).repeat_interleave(3)
    sim = cosine(torch.randn(18, 4, generator=torch.Generator().manual_seed(2)))
    expected = calibration_thresholds(sim, labels)

    def refuse(*args, **kwargs):
        raise AssertionError("torch.quantile refuses more than 2^24 values; OPIS must not call it")

    monkeypatch.setattr(torch, "quantile", refuse)
    torch.testing.assert_close(calibration_thresholds(sim, labels), expected)
    values = torch.arange(2**24 + 1, dtype=torch.float32).flip(0)  # one more than torch.quantile accepts
    got = linear_quantiles(values, torch.tensor([0.0, 0.9, 0.5 + 0.25 / 2**24, 1.0]))
    torch.testing.assert_close(got, torch.tensor([0.0, 0.9 * 2**24, 2**23 + 0.25, 2**24]))


def test_epsilon_opis_ranking_per_threshold_or_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    opis_module = importlib.import_module("hf_margin.metrics.opis")  # the package exports a function `opis`
    curves = torch.tensor([[1.0, 0.0], [0.0, 0.8], [0.3, 0.3]], dtype=torch.float64)  # mean utilities .5, .4, .3
    monkeypatch.setattr(opis_module, "_calibrated_curves", lambda *args: curves)
    sim, labels = torch.eye(6), torch.arange(3).repeat_interleave(2)
    # k = 1: per threshold the best and worst are (1, 0) then (0.8, 0); fixed they are classes 0 and 2.
    assert epsilon_opis(sim, labels, epsilon=0.34) == pytest.approx((1.0 + 0.64) / 2)
    assert epsilon_opis(sim, labels, epsilon=0.34, ranking="fixed") == pytest.approx((0.7**2 + 0.3**2) / 2)


def test_fixed_ranking_never_exceeds_the_per_threshold_gap() -> None:
    x, labels = torch.randn(60, 5, generator=torch.Generator().manual_seed(8)), torch.arange(12).repeat_interleave(5)
    sim = cosine(x)
    for epsilon in (0.1, 0.25, 0.5):
        fixed = epsilon_opis(sim, labels, epsilon, ranking="fixed")
        assert 0 <= fixed <= epsilon_opis(sim, labels, epsilon) + 1e-15
    with pytest.raises(ValueError, match="`ranking`"):
        epsilon_opis(sim, labels, 0.1, ranking="best")


@pytest.mark.parametrize("labels", [torch.zeros(4), torch.zeros(4, dtype=torch.bool), [0, 0, 1, 1]])
def test_labels_must_be_an_integer_tensor(labels) -> None:
    with pytest.raises(TypeError, match="`labels`"):
        opis(torch.eye(4), labels)
