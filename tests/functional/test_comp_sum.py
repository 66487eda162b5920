"""Comp-sum losses (arXiv 2304.07288; the math of CompSumLoss): the named members, continuity at tau = 1, bound,
invariance, weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.comp_sum import comp_sum_bound, comp_sum_loss


def batch(n: int = 8, k: int = 5, seed: int = 0, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=torch.float64) * scale, torch.randint(0, k, (n,), generator=g)


def target_probability(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return logits.softmax(1).gather(1, labels.unsqueeze(1)).squeeze(1)


def test_tau_one_is_cross_entropy() -> None:
    logits, labels = batch()
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(
            comp_sum_loss(logits, labels, 1.0, reduction=reduction),
            F.cross_entropy(logits, labels, reduction=reduction),
        )


def test_tau_zero_is_the_sum_exponential_loss() -> None:
    logits, labels = batch()
    gaps = logits - logits.gather(1, labels.unsqueeze(1))
    others = torch.ones_like(logits, dtype=torch.bool).scatter(1, labels.unsqueeze(1), False)
    expected = (gaps.exp() * others).sum(1)
    torch.testing.assert_close(comp_sum_loss(logits, labels, 0.0, reduction="none"), expected)


@pytest.mark.parametrize("q", [0.1, 0.3, 0.7, 0.99])
def test_tau_one_plus_q_is_generalised_cross_entropy(q: float) -> None:
    logits, labels = batch()
    expected = (1 - target_probability(logits, labels) ** q) / q
    torch.testing.assert_close(comp_sum_loss(logits, labels, 1.0 + q, reduction="none"), expected)


def test_tau_two_is_mae() -> None:
    logits, labels = batch()
    p_y = target_probability(logits, labels)
    loss = comp_sum_loss(logits, labels, 2.0, reduction="none")
    torch.testing.assert_close(loss, 1 - p_y)
    l1 = (F.one_hot(labels, 5).double() - logits.softmax(1)).abs().sum(1)
    torch.testing.assert_close(2 * loss, l1)


@pytest.mark.parametrize("tau", [0.0, 0.3, 0.5, 1.5, 3.0, 7.0])
def test_matches_phi_of_the_exponential_sum(tau: float) -> None:
    logits, labels = batch()
    u = (logits - logits.gather(1, labels.unsqueeze(1))).exp().sum(1) - 1.0  # sum over y' != y
    expected = ((1 + u) ** (1 - tau) - 1) / (1 - tau)
    torch.testing.assert_close(comp_sum_loss(logits, labels, tau, reduction="none"), expected)


def test_continuous_at_tau_one() -> None:
    logits, labels = batch()
    cross_entropy = F.cross_entropy(logits, labels, reduction="none")
    for tau in (1 - 1e-6, 1 + 1e-6):
        loss = comp_sum_loss(logits, labels, tau, reduction="none")
        torch.testing.assert_close(loss, cross_entropy, rtol=1e-5, atol=0)
    for tau in (1 - 1e-12, 1 + 1e-12):
        torch.testing.assert_close(comp_sum_loss(logits, labels, tau, reduction="none"), cross_entropy)


def test_bounded_exactly_when_tau_exceeds_one() -> None:
    logits, labels = batch()
    wrong = logits.clone()
    wrong[torch.arange(8), labels] = -50.0  # confidently wrong: p_y ~ e^-50
    for tau in (1.5, 2.0, 4.0):
        bound = comp_sum_bound(tau)
        assert bound == pytest.approx(1 / (tau - 1))
        assert (comp_sum_loss(logits, labels, tau, reduction="none") < bound).all()
        torch.testing.assert_close(comp_sum_loss(wrong, labels, tau), torch.tensor(bound, dtype=torch.float64))
    for tau in (0.0, 0.5, 1.0):
        assert comp_sum_bound(tau) == math.inf
        assert float(comp_sum_loss(wrong, labels, tau)) > 40.0, "grows without bound"


def test_invariant_to_a_constant_shift() -> None:
    logits, labels = batch()
    for tau in (0.0, 0.5, 1.0, 2.5):
        torch.testing.assert_close(
            comp_sum_loss(logits + 123.0, labels, tau, reduction="none"),
            comp_sum_loss(logits, labels, tau, reduction="none"),
        )


def test_reductions_and_sample_weights() -> None:
    logits, labels = batch()
    weight = torch.rand(8, dtype=torch.float64) + 0.1
    per_sample = comp_sum_loss(logits, labels, 1.5, reduction="none")
    torch.testing.assert_close(comp_sum_loss(logits, labels, 1.5, reduction="sum"), per_sample.sum())
    torch.testing.assert_close(comp_sum_loss(logits, labels, 1.5), per_sample.mean())
    torch.testing.assert_close(
        comp_sum_loss(logits, labels, 1.5, sample_weight=weight, reduction="none"), weight * per_sample
    )
    torch.testing.assert_close(
        comp_sum_loss(logits, labels, 1.5, sample_weight=weight, reduction="sum"), (weight * per_sample).sum()
    )
    # "mean" divides by the batch size, so a batch split in halves averages to the whole batch's value.
    torch.testing.assert_close(comp_sum_loss(logits, labels, 1.5, sample_weight=weight), (weight * per_sample).mean())
    halves = [comp_sum_loss(logits[i : i + 4], labels[i : i + 4], 1.5, sample_weight=weight[i : i + 4]) for i in (0, 4)]
    torch.testing.assert_close(sum(halves) / 2, comp_sum_loss(logits, labels, 1.5, sample_weight=weight))


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.0 + 1e-3, 1.5, 2.0, 5.0])
def test_gradcheck(tau: float) -> None:
    logits, labels = batch(scale=1.0)
    weight = torch.rand(8, dtype=torch.float64) + 0.1
    assert torch.autograd.gradcheck(lambda z: comp_sum_loss(z, labels, tau), (logits.requires_grad_(),))
    assert torch.autograd.gradcheck(
        lambda z: comp_sum_loss(z, labels, tau, sample_weight=weight, reduction="sum"), (logits,)
    )


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5, 2.0, 5.0])
def test_extreme_logits(tau: float) -> None:
    right = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4]], requires_grad=True)
    labels = torch.tensor([0, 1])
    loss = comp_sum_loss(right, labels, tau)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.isfinite(right.grad).all()
    wrong = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4]], requires_grad=True)
    loss = comp_sum_loss(wrong, torch.tensor([1, 0]), tau)
    if tau >= 1.0:
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(wrong.grad).all()
        expected = 2e4 if tau == 1.0 else 1 / (tau - 1)  # -log p_y = 2e4 for both rows
        assert float(loss.detach()) == pytest.approx(expected)
    else:
        assert float(loss.detach()) == math.inf, "the true value, exp((1 - tau) 2e4), overflows: documented"
    assert not torch.isnan(loss)
    half = comp_sum_loss(right.detach().bfloat16(), labels, tau)
    assert half.dtype == torch.float32 and float(half) == 0.0


def test_bad_input_names_the_argument() -> None:
    logits, labels = batch(n=3, k=4)
    for tau in (-0.5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="`tau` must be a finite number >= 0"):
            comp_sum_loss(logits, labels, tau)
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 3\]"):
        comp_sum_loss(logits, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(3,\)"):
        comp_sum_loss(logits, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"`logits` must have shape \(batch, num_classes\)"):
        comp_sum_loss(logits[0], labels)
    with pytest.raises(TypeError, match="`logits` must be a floating-point"):
        comp_sum_loss(labels.unsqueeze(1), labels)
    with pytest.raises(ValueError, match=r"`sample_weight` must have shape \(3,\)"):
        comp_sum_loss(logits, labels, sample_weight=torch.ones(4))
    with pytest.raises(ValueError, match="`sample_weight` must be finite and >= 0"):
        comp_sum_loss(logits, labels, sample_weight=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        comp_sum_loss(logits, labels, reduction="batchmean")
    with pytest.raises(ValueError, match="`tau`"):
        comp_sum_bound(-1.0)
