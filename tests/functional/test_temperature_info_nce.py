"""Temperature InfoNCE's gradient identities (Wang & Liu, arXiv 2012.09740): the negatives' gradients add up to
minus the positive's, the relative penalty is a softmax over negatives at tau, and the tau -> 0 / tau -> inf
limits; plus a loop reference, gradcheck, extremes and errors."""

from __future__ import annotations

import math

import pytest
import torch

from hf_margin.functional.temperature_info_nce import info_nce_pair_losses, relative_penalty


def one_positive_rows(seed: int = 0, rows: int = 4, negatives: int = 6):
    """Similarities (rows, 1 + negatives): column 0 the positive, the rest negatives."""
    g = torch.Generator().manual_seed(seed)
    sim = torch.rand(rows, 1 + negatives, generator=g, dtype=torch.float64) * 2 - 1
    pos = torch.zeros_like(sim, dtype=torch.bool)
    pos[:, 0] = True
    return sim, pos, ~pos


def test_matches_a_loop_reference() -> None:
    g = torch.Generator().manual_seed(3)
    sim = torch.rand(5, 7, generator=g, dtype=torch.float64) * 2 - 1
    labels, ref_labels = torch.tensor([0, 1, 1, 2, 0]), torch.tensor([0, 0, 1, 1, 2, 2, 3])
    pos, neg = labels[:, None] == ref_labels[None], labels[:, None] != ref_labels[None]
    ours = info_nce_pair_losses(sim, pos, neg, 0.1)
    for a in range(5):
        for p in range(7):
            if not pos[a, p]:
                assert ours[a, p] == 0
                continue
            denominator = math.exp(sim[a, p] / 0.1) + sum(math.exp(sim[a, n] / 0.1) for n in range(7) if neg[a, n])
            assert ours[a, p].item() == pytest.approx(-math.log(math.exp(sim[a, p] / 0.1) / denominator), rel=1e-12)


@pytest.mark.parametrize("tau", [0.07, 0.2, 1.0])
def test_negative_gradients_sum_to_minus_the_positive_and_r_is_a_softmax(tau: float) -> None:
    sim, pos, neg = one_positive_rows()
    sim.requires_grad_(True)
    info_nce_pair_losses(sim, pos, neg, tau).sum().backward()
    grad = sim.grad
    torch.testing.assert_close(grad[:, 1:].sum(1), -grad[:, 0])
    assert (grad[:, 0] < 0).all() and (grad[:, 1:] > 0).all()
    r = relative_penalty(sim.detach(), neg, tau)
    torch.testing.assert_close(r[:, 1:], grad[:, 1:] / grad[:, 0:1].abs())
    torch.testing.assert_close(r[:, 1:], torch.softmax(sim.detach()[:, 1:] / tau, dim=1))
    assert (r[:, 0] == 0).all()


def test_temperature_limits() -> None:
    sim, pos, neg = one_positive_rows(1)
    s_pos, s_neg = sim[:, 0], sim[:, 1:]
    tau = 1e-4  # tau -> 0: tau L -> max(s_max - s_pos, 0), r -> one-hot on the hardest negative
    small = info_nce_pair_losses(sim, pos, neg, tau)[:, 0]
    torch.testing.assert_close(small * tau, (s_neg.max(1).values - s_pos).clamp_min(0), atol=1e-3, rtol=0)
    hardest = relative_penalty(sim, neg, tau)[:, 1:].argmax(1)
    assert torch.equal(hardest, s_neg.argmax(1))
    assert (relative_penalty(sim, neg, tau)[:, 1:].max(1).values > 0.99).all()
    tau = 1e4  # tau -> inf: L -> log N - (1 / (N tau)) sum_k (s_pos - s_k), r -> uniform
    n = sim.shape[1]
    large = info_nce_pair_losses(sim, pos, neg, tau)[:, 0]
    expected = math.log(n) - (s_pos.unsqueeze(1) - s_neg).sum(1) / (n * tau)
    torch.testing.assert_close(large, expected, atol=1e-7, rtol=0)  # the first-order term is ~1e-4, O(1/tau^2) left
    assert ((large - math.log(n)).abs() > 1e-6).all()
    torch.testing.assert_close(
        relative_penalty(sim, neg, tau)[:, 1:], torch.full_like(s_neg, 1 / (n - 1)), atol=1e-3, rtol=0
    )


def test_gradcheck_and_rows_without_negatives() -> None:
    sim, pos, neg = one_positive_rows(2)
    neg[1] = False  # an anchor without negatives: loss 0, gradient 0
    sim.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: info_nce_pair_losses(s, pos, neg, 0.2), (sim,))
    info_nce_pair_losses(sim, pos, neg, 0.2).sum().backward()
    assert info_nce_pair_losses(sim, pos, neg, 0.2)[1, 0] == 0 and (sim.grad[1] == 0).all()
    assert (relative_penalty(sim.detach(), neg, 0.2)[1] == 0).all()


def test_extremes_stay_finite() -> None:
    sim = torch.tensor([[-1.0, 1.0, 1.0], [1.0, -1.0, -1.0]], requires_grad=True)
    pos = torch.tensor([[True, False, False]] * 2)
    losses = info_nce_pair_losses(sim, pos, ~pos, 1e-3)
    losses.sum().backward()
    assert torch.isfinite(losses).all() and torch.isfinite(sim.grad).all()
    assert losses[0, 0].item() == pytest.approx(2000 + math.log(2), rel=1e-5) and losses[1, 0].item() == 0


def test_errors_name_the_argument() -> None:
    sim, pos, neg = one_positive_rows()
    with pytest.raises(ValueError, match="`temperature`"):
        info_nce_pair_losses(sim, pos, neg, 0.0)
    with pytest.raises(ValueError, match="`pos_mask`"):
        info_nce_pair_losses(sim, pos.float(), neg, 0.1)
    with pytest.raises(ValueError, match="`neg_mask`"):
        relative_penalty(sim, neg[:, 1:], 0.1)
    with pytest.raises(ValueError, match="`similarities`"):
        info_nce_pair_losses(sim[0], pos[0], neg[0], 0.1)


def test_relative_penalty_gradient_is_finite_for_rows_without_negatives_and_hot_positives() -> None:
    sim, _, neg = one_positive_rows(4)
    neg[1] = False  # no negatives: lse = -inf must not leak an inf into the gradient
    sim[2, 0] = 1.0  # the positive's exponent s/tau - lse is far beyond float64's exp range at tau = 1e-3
    sim[2, 1:] = -1.0
    sim.requires_grad_(True)
    weights = torch.rand(sim.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (relative_penalty(sim, neg, 1e-3) * weights).sum().backward()
    assert torch.isfinite(sim.grad).all() and (sim.grad[1] == 0).all()
    assert torch.autograd.gradcheck(lambda s: relative_penalty(s, neg, 0.2), (sim,))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s, p, n: info_nce_pair_losses(s.long(), p, n, 0.1), "`similarities`"),
        (lambda s, p, n: info_nce_pair_losses(s, None, n, 0.1), "`pos_mask`"),
        (lambda s, p, n: relative_penalty(s.tolist(), n, 0.1), "`similarities`"),
        (lambda s, p, n: relative_penalty(s, n.long(), 0.1), "`neg_mask`"),
    ],
)
def test_masks_and_similarities_go_through_the_shared_check(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(*one_positive_rows())
