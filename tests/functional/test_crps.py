"""afCRPS, CRPS and fair CRPS (AIFS-CRPS, arXiv 2412.15832): the spec's nine properties, recomputed with the
naive double sum of eq. (1)-(3), the integral definition and a Gaussian closed form; gradients, precision,
extremes and errors."""

from __future__ import annotations

import math

import pytest
import torch

from hf_margin.functional.crps import afcrps, crps, fair_crps
from hf_margin.losses import AFCRPSLoss


def naive(ensemble: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. (3) term by term: mean |x_j - y| - (M - 1 + alpha) / (2 M^2 (M - 1)) sum_j sum_k |x_j - x_k|."""
    size = ensemble.shape[-1]
    skill = (ensemble - target[..., None]).abs().mean(-1)
    spread = (ensemble[..., :, None] - ensemble[..., None, :]).abs().sum((-2, -1))
    return skill - (size - 1 + alpha) / (2 * size**2 * (size - 1)) * spread


def sample(shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape[:-1], generator=g).double()


@pytest.mark.parametrize("size", [2, 3, 4, 17, 64])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.95, 1.0])
def test_sorted_equals_pairwise_equals_naive(size: int, alpha: float) -> None:
    ensemble, target = sample((6, 5, size), seed=size)
    reference = naive(ensemble, target, alpha)
    for method in ("sorted", "pairwise"):
        got = afcrps(ensemble, target, alpha, method=method, reduction="none")
        torch.testing.assert_close(got, reference, rtol=0, atol=1e-12)


def test_alpha_ends_are_fair_and_standard_crps_and_mix_linearly() -> None:
    ensemble, target = sample((8, 4))
    size = 4
    skill = (ensemble - target[:, None]).abs().mean(-1)
    spread = (ensemble[:, :, None] - ensemble[:, None, :]).abs().sum((-2, -1))
    standard, fair = skill - spread / (2 * size**2), skill - spread / (2 * size * (size - 1))
    torch.testing.assert_close(crps(ensemble, target, reduction="none"), standard)
    torch.testing.assert_close(fair_crps(ensemble, target, reduction="none"), fair)
    torch.testing.assert_close(afcrps(ensemble, target, 1.0, reduction="none"), fair)
    torch.testing.assert_close(afcrps(ensemble, target, 0.0, reduction="none"), standard)
    torch.testing.assert_close(afcrps(ensemble, target, 0.95, reduction="none"), 0.95 * fair + 0.05 * standard)


def test_known_value_and_integral_definition() -> None:
    members, observed = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64), torch.tensor(3.5).double()
    assert crps(members, observed).item() == pytest.approx(0.625, abs=1e-15)  # as properscoring gives
    # CRPS(F_M, y) = integral of (F_M(z) - 1{y <= z})^2 dz, on a midpoint grid of [0, 5]
    ensemble, target = sample((3, 5), seed=3)
    for row in range(3):
        z = torch.linspace(-8, 8, 400_001, dtype=torch.float64)
        z = (z[1:] + z[:-1]) / 2
        cdf = (ensemble[row][None, :] <= z[:, None]).double().mean(1)
        integral = ((cdf - (target[row] <= z).double()) ** 2).sum() * 16 / 400_000
        assert crps(ensemble[row], target[row]).item() == pytest.approx(integral.item(), abs=1e-4)


@pytest.mark.parametrize("method", ["sorted", "pairwise"])
def test_fair_crps_degeneracy_and_almost_fair_fix(method: str) -> None:
    observed, size, alpha = 0.7, 4, 0.95
    far = torch.tensor([-30.0, -1.0, 0.7, 2.0, 1e3], dtype=torch.float64)
    ensemble = torch.cat([torch.full((5, size - 1), observed, dtype=torch.float64), far[:, None]], dim=1)
    target = torch.full((5,), observed, dtype=torch.float64)
    assert (fair_crps(ensemble, target, method=method, reduction="none").abs() < 1e-12).all(), "the free member"
    eps = (1 - alpha) / size
    torch.testing.assert_close(
        afcrps(ensemble, target, alpha, method=method, reduction="none"), eps * (far - observed).abs() / size
    )


def test_non_negative_and_zero_only_at_the_observation() -> None:
    g = torch.Generator().manual_seed(5)
    ensemble = torch.randn(200, 5, generator=g, dtype=torch.float64) * torch.logspace(-6, 6, 200).double()[:, None]
    target = torch.randn(200, generator=g, dtype=torch.float64)
    for alpha in (0.0, 0.3, 0.95, 1.0):
        assert (afcrps(ensemble, target, alpha, method="pairwise", reduction="none") >= 0).all()
        sorted_form = afcrps(ensemble, target, alpha, reduction="none")
        assert (sorted_form >= -1e-12 * ensemble.abs().amax(-1)).all(), "only round-off below zero"
    assert afcrps(target[:, None].repeat(1, 3), target).item() == 0


def test_bias_of_a_finite_ensemble_matches_eps_over_two_times_mean_pair_distance() -> None:
    """M i.i.d. N(0, 1) members: E[afCRPS] = CRPS(N(0, 1), y) + (1 - alpha)/(2M) E|X - X'|, E|X - X'| = 2/sqrt(pi)."""
    g = torch.Generator().manual_seed(0)
    size, draws, observed = 4, 400_000, 0.3
    ensemble = torch.randn(draws, size, generator=g, dtype=torch.float64)
    target = torch.full((draws,), observed, dtype=torch.float64)
    normal = torch.distributions.Normal(0.0, 1.0)
    y = torch.tensor(observed, dtype=torch.float64)
    exact = (y * (2 * normal.cdf(y) - 1) + 2 * normal.log_prob(y).exp() - 1 / math.sqrt(math.pi)).item()
    for alpha in (0.0, 0.95, 1.0):
        scores = afcrps(ensemble, target, alpha, reduction="none")
        tolerance = 4 * scores.std().item() / math.sqrt(draws)
        expected = exact + (1 - alpha) / (2 * size) * 2 / math.sqrt(math.pi)
        assert scores.mean().item() == pytest.approx(expected, abs=tolerance)
    assert tolerance < 0.02, "the test separates alpha = 0 (bias 0.14) from 0.95 (bias 0.007)"


def test_permutation_invariance_and_member_dim() -> None:
    ensemble, target = sample((3, 7, 6), seed=9)
    shuffled = ensemble[..., torch.randperm(6)]
    for method in ("sorted", "pairwise"):
        reference = afcrps(ensemble, target, method=method, reduction="none")
        torch.testing.assert_close(
            afcrps(shuffled, target, method=method, reduction="none"), reference, rtol=0, atol=1e-14
        )
    moved = ensemble.permute(2, 0, 1)  # members first: (M, 3, 7)
    torch.testing.assert_close(
        afcrps(moved, target, member_dim=0, reduction="none"), afcrps(ensemble, target, reduction="none")
    )
    weight = torch.rand(3, 7, dtype=torch.float64)
    torch.testing.assert_close(
        afcrps(ensemble, target, sample_weight=weight, reduction="sum"),
        (afcrps(ensemble, target, reduction="none") * weight).sum(),
    )


@pytest.mark.parametrize("method", ["sorted", "pairwise"])
def test_gradcheck_with_distinct_members(method: str) -> None:
    g = torch.Generator().manual_seed(1)
    ensemble = torch.arange(12, dtype=torch.float64).view(3, 4) * 0.37 + torch.rand(3, 4, generator=g).double()
    target = torch.tensor([0.1, 1.9, 3.05], dtype=torch.float64, requires_grad=True)
    ensemble.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, y: afcrps(x, y, 0.95, method=method), (ensemble, target))


def test_low_precision_inputs_are_computed_in_float32() -> None:
    ensemble, target = sample((16, 8), seed=2)
    low = ensemble.bfloat16()
    for method in ("sorted", "pairwise"):
        got = afcrps(low, target.bfloat16(), method=method, reduction="none")
        assert got.dtype == torch.float32
        torch.testing.assert_close(
            got.double(), naive(low.double(), target.bfloat16().double(), 0.95), rtol=1e-5, atol=1e-6
        )
    low.requires_grad_(True)
    afcrps(low, target.half()).backward()
    assert low.grad is not None and low.grad.dtype == torch.bfloat16


def test_extreme_values_stay_finite() -> None:
    ensemble = torch.tensor(
        [[1e30, -1e30, 0.0, 5.0], [1e6 + 1, 1e6 + 2, 1e6 + 3, 1e6 + 4], [2.0, 2.0, 2.0, 2.0]], requires_grad=True
    )
    target = torch.tensor([0.0, 1e6 + 3.5, 2.0])
    for method in ("sorted", "pairwise"):
        loss = afcrps(ensemble, target, method=method, reduction="none")
        loss.sum().backward()
        assert torch.isfinite(loss).all() and torch.isfinite(ensemble.grad).all()
        # offset 1e6: the shift to y avoids the cancellation
        reference = naive(ensemble[1:2].double(), target[1:2].double(), 0.95).item()
        assert loss[1].item() == pytest.approx(reference, abs=1e-5)
        assert loss[2] == 0
        ensemble.grad = None


def test_errors_name_the_argument() -> None:
    ensemble, target = sample((4, 3))
    with pytest.raises(ValueError, match="`alpha`"):
        afcrps(ensemble, target, alpha=1.5)
    with pytest.raises(ValueError, match="`alpha`"):
        afcrps(ensemble, target, alpha=-0.1)
    with pytest.raises(ValueError, match=r"`ensemble` needs M >= 2 members.*\(4, 1\)"):
        afcrps(ensemble[:, :1], target)
    with pytest.raises(ValueError, match=r"`target` must have shape \(4,\).*got shape \(4, 3\)"):
        afcrps(ensemble, ensemble)
    with pytest.raises(ValueError, match="`member_dim`"):
        afcrps(ensemble, target, member_dim=2)
    with pytest.raises(ValueError, match="`method`"):
        afcrps(ensemble, target, method="naive")
    with pytest.raises(ValueError, match="`reduction`"):
        afcrps(ensemble, target, reduction="avg")
    with pytest.raises(TypeError, match="`ensemble`"):
        afcrps(torch.ones(4, 3, dtype=torch.long), target)
    with pytest.raises(TypeError, match="`target`"):
        afcrps(ensemble, [0.0] * 4)  # type: ignore[arg-type]


def test_empty_forecast_raises_instead_of_a_nan_mean() -> None:
    """#19 item 3: a forecast with no values names `ensemble` instead of returning the NaN mean of nothing."""
    with pytest.raises(ValueError, match=r"`ensemble`.*empty"):
        afcrps(torch.zeros(0, 4), torch.zeros(0))
    with pytest.raises(ValueError, match=r"`ensemble`.*empty"):
        AFCRPSLoss()(torch.zeros(0, 4), torch.zeros(0))
