"""Probability margin (PMA's loss, arXiv 2411.15210): range, sign = sign of the logit margin, shift invariance,
the analytic gradient, a hand-computed value, extremes and errors."""

from __future__ import annotations

import math

import pytest
import torch

from hf_margin.functional.probability_margin import probability_margin_loss


def batch(seed: int = 0, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(64, classes, generator=g, dtype=torch.float64) * 3, torch.randint(classes, (64,), generator=g)


def test_hand_computed_value_and_reductions() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([1, 0])
    first = (math.exp(2) - math.exp(1)) / (1 + math.exp(1) + math.exp(2))
    second = (1 - math.exp(3)) / (math.exp(3) + 2)
    torch.testing.assert_close(
        probability_margin_loss(logits, labels, "none"), torch.tensor([first, second], dtype=torch.float64)
    )
    assert probability_margin_loss(logits, labels).item() == pytest.approx((first + second) / 2)
    assert probability_margin_loss(logits, labels, "sum").item() == pytest.approx(first + second)
    weight = torch.tensor([2.0, 0.0], dtype=torch.float64)
    assert probability_margin_loss(logits, labels, "sum", sample_weight=weight).item() == pytest.approx(2 * first)


def test_range_sign_and_shift_invariance() -> None:
    logits, labels = batch()
    margin = probability_margin_loss(logits, labels, "none")
    assert ((margin > -1) & (margin < 1)).all()
    others = logits.scatter(1, labels[:, None], float("-inf")).amax(1)
    logit_margin = others - logits.gather(1, labels[:, None]).squeeze(1)
    assert torch.equal(torch.sign(margin), torch.sign(logit_margin))
    assert torch.equal(margin > 0, logits.argmax(1) != labels), "positive exactly on the misclassified samples"
    torch.testing.assert_close(probability_margin_loss(logits + 123.4, labels, "none"), margin)
    shifted = logits + torch.randn(64, 1, dtype=torch.float64) * 50  # a different constant per row
    torch.testing.assert_close(probability_margin_loss(shifted, labels, "none"), margin)


def test_analytic_gradient_matches_autograd_and_gradcheck() -> None:
    logits, labels = batch(1)
    logits.requires_grad_(True)
    probability_margin_loss(logits, labels, "sum").backward()
    p = torch.softmax(logits.detach(), 1)
    runner_up = p.scatter(1, labels[:, None], -1.0).argmax(1)
    rows = torch.arange(64)
    p_m, p_y = p[rows, runner_up], p[rows, labels]
    expected = -(p_m - p_y)[:, None] * p
    expected[rows, runner_up] += p_m
    expected[rows, labels] -= p_y
    torch.testing.assert_close(logits.grad, expected)
    assert torch.autograd.gradcheck(lambda z: probability_margin_loss(z, labels), (logits.detach().requires_grad_(),))


def test_extremes_and_low_precision() -> None:
    huge = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [5.0, 5.0, 5.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 2])
    margin = probability_margin_loss(huge, labels, "none")
    margin.sum().backward()
    assert torch.isfinite(margin).all() and torch.isfinite(huge.grad).all()
    assert margin.tolist() == pytest.approx([-1.0, 1.0, 0.0])
    assert probability_margin_loss(huge.detach().bfloat16(), labels, "none").dtype == torch.float32
    two = torch.tensor([[2.0, -1.0]])
    assert probability_margin_loss(two, torch.tensor([0])).item() == pytest.approx(-math.tanh(1.5))  # 2 classes


def test_errors_name_the_argument() -> None:
    logits, labels = batch()
    with pytest.raises(ValueError, match="`labels`"):
        probability_margin_loss(logits, labels[:3])
    with pytest.raises(ValueError, match="`labels`"):
        probability_margin_loss(logits, labels + 5)
    with pytest.raises(ValueError, match="classes >= 2"):
        probability_margin_loss(logits[:, :1], torch.zeros(64, dtype=torch.long))
    with pytest.raises(ValueError, match="`logits`"):
        probability_margin_loss(logits[0], labels[:1])
    with pytest.raises(ValueError, match="`reduction`"):
        probability_margin_loss(logits, labels, "avg")
