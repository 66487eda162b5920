"""MADPO's weight function and beta-DPO's batch statistics: the properties the paper and its code pin down."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.preference import (
    DEFAULT_TAU,
    BetaDPOState,
    madpo_coefficient,
    madpo_two_response_loss,
    madpo_weight,
    weighted_dpo_loss,
)

H = torch.linspace(-12, 12, 2401, dtype=torch.float64)


def test_coefficient_shape() -> None:
    c = madpo_coefficient(H.abs())
    assert madpo_coefficient(torch.tensor([DEFAULT_TAU], dtype=torch.float64)).item() == pytest.approx(1.0, abs=1e-12)
    assert madpo_coefficient(torch.tensor([0.0], dtype=torch.float64)).item() == pytest.approx(1.997, abs=1e-3)
    assert madpo_coefficient(torch.tensor([60.0], dtype=torch.float64)).item() == pytest.approx(0.5, abs=1e-9)
    a = torch.linspace(0, 20, 500, dtype=torch.float64)
    assert (madpo_coefficient(a).diff() < 0).all()  # decreasing in |h|
    assert ((c >= 0.5) & (c <= 2.0)).all()


def test_weight_identity_and_branches() -> None:
    w = madpo_weight(H)
    above = H > -DEFAULT_TAU
    c = madpo_coefficient(H.abs())
    torch.testing.assert_close((w * torch.sigmoid(H))[above], torch.sigmoid(c * H)[above])
    assert (w[~above] == 1).all()
    assert 0.02 < w.min() < 0.05 and 1.2 < w.max() < 1.22  # w in [~0.03, ~1.21] at the defaults
    assert H[w.argmax()].item() == pytest.approx(0.88, abs=0.02)
    assert (w[(H > 0)] < 1 / torch.sigmoid(H[H > 0])).all()
    assert (w[(H < 0) & above] < 1).all()  # pairs the reward model disputes are damped


def test_weight_is_continuous_at_minus_tau() -> None:
    eps = 1e-7
    near = torch.tensor([-DEFAULT_TAU - eps, -DEFAULT_TAU + eps], dtype=torch.float64)
    torch.testing.assert_close(madpo_weight(near), torch.ones(2, dtype=torch.float64), atol=1e-6, rtol=0)


def test_c_equal_one_is_dpo() -> None:
    for c_max, c_min in ((1.0, 1.0), (1.0, 0.5), (2.0, 1.0)):
        assert (madpo_weight(H, c_max, c_min) == 1).all()


def test_bradley_terry_expectation_of_the_weights_is_one() -> None:
    h = torch.linspace(-DEFAULT_TAU + 0.01, DEFAULT_TAU - 0.01, 101, dtype=torch.float64)
    expected = torch.sigmoid(h) * madpo_weight(h) + torch.sigmoid(-h) * madpo_weight(-h)
    torch.testing.assert_close(expected, torch.ones_like(h))


def test_no_gradient_flows_into_the_margins() -> None:
    margins = torch.tensor([0.5, -2.0, 7.0], requires_grad=True)
    logratio = torch.tensor([0.3, 0.1, -0.2], requires_grad=True)
    weighted_dpo_loss(logratio, torch.zeros(3), madpo_weight(margins), 0.1).sum().backward()
    assert margins.grad is None and logratio.grad is not None


def test_two_response_form_is_symmetric_and_matches_cross_entropy() -> None:
    torch.manual_seed(0)
    l1, l2, m, choice = torch.randn(16), torch.randn(16), 4 * torch.randn(16), torch.randint(0, 2, (16,))
    loss = madpo_two_response_loss(l1, l2, m, choice, beta=0.1)
    swapped = madpo_two_response_loss(l2, l1, -m, 1 - choice, beta=0.1)
    torch.testing.assert_close(loss, swapped)
    plain = madpo_two_response_loss(l1, l2, m, choice, beta=0.1, c_max=1.0, c_min=1.0)
    torch.testing.assert_close(plain, F.cross_entropy(0.1 * torch.stack([l1, l2], 1), choice, reduction="none"))
    with pytest.raises(ValueError, match="one value per pair"):
        madpo_two_response_loss(l1, l2[:3], m, choice, beta=0.1)


def test_bad_margins_and_parameters() -> None:
    with pytest.raises(ValueError, match=r"`margins` must be finite; NaN or inf at pair indices \[1\]"):
        madpo_weight(torch.tensor([0.0, math.nan]))
    with pytest.raises(ValueError, match="`margins` must be a 1-D tensor"):
        madpo_weight(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="0 < c_min <= 1 <= c_max"):
        madpo_weight(torch.zeros(2), c_max=0.8)


def test_beta_dpo_state() -> None:
    torch.manual_seed(0)
    state = BetaDPOState()
    margins = torch.tensor([1.0, 2.0, 3.0, 10.0, -4.0])
    beta, mask = state.step(margins, beta0=0.1, alpha=0.6, momentum=0.9, keep=0.8)
    m = 0.1 * margins
    assert state.centre == pytest.approx(0.1 * float(m.mean()))
    assert state.scale == pytest.approx(0.9 + 0.1 * (float(m.std()) + 1e-6))
    assert beta == pytest.approx((1 + 0.6 * (float(m.mean()) - state.centre)) * 0.1)
    assert mask.sum() == 4 and set(mask.tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_beta_dpo_state_is_unchanged_by_a_non_finite_batch(bad: float) -> None:
    """#19 item 1: a batch with a NaN/inf implicit margin gives a non-finite beta (so a non-finite loss) but leaves
    the EMAs as they were, so the next finite batch is as if the bad one never happened."""
    state, clean = BetaDPOState(), BetaDPOState()
    margins = torch.tensor([1.0, 2.0, 3.0, 10.0, -4.0])
    state.step(margins, beta0=0.1, alpha=0.6, momentum=0.9, keep=0.8)
    clean.step(margins, beta0=0.1, alpha=0.6, momentum=0.9, keep=0.8)
    beta, mask = state.step(torch.tensor([1.0, bad, 0.0]), beta0=0.1, alpha=0.6, momentum=0.9, keep=0.8)
    assert not math.isfinite(beta) and mask.sum() == 2
    assert (state.centre, state.scale) == (clean.centre, clean.scale)
    assert state.step(margins, 0.1, 0.6, 0.9, 0.8)[0] == clean.step(margins, 0.1, 0.6, 0.9, 0.8)[0]


def test_madpo_parameters_reject_nan_and_wrong_types() -> None:
    """#19 items 2 and 5: NaN lambda/tau raise; a string setting is a TypeError naming it."""
    with pytest.raises(ValueError, match="lambda > 0"):
        madpo_weight(torch.zeros(2), lam=math.nan)
    with pytest.raises(ValueError, match="tau > 0"):
        madpo_weight(torch.zeros(2), tau=math.nan)
    with pytest.raises(TypeError, match="`c_max`"):
        madpo_weight(torch.zeros(2), c_max="2")  # type: ignore[arg-type]
