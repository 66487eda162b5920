"""RSS's robust loss phi_gamma, its inner ascent and the ramp loss (arXiv 2310.00027; ascent: arXiv 1710.10571)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin.functional import ramp_loss, wasserstein_adversarial_inputs, wasserstein_robust_loss

THETA = torch.tensor([1.0, -2.0], dtype=torch.float64)
X = torch.tensor([[0.5, 0.3]], dtype=torch.float64)
Y = torch.tensor([1.0], dtype=torch.float64)


def linear_score(theta: Tensor):  # l(z, y) = -y theta.z
    return lambda z, y: -(z @ theta) * y


def logistic(theta: Tensor):  # l(z, y) = log(1 + exp(-y theta.z))
    return lambda z, y: F.softplus(-(z @ theta) * y)


def test_spec_linear_score_example() -> None:
    # spec: z* = x - y theta / (2 gamma) = (0.25, 0.8), phi = -y theta.x + |theta|^2 / (4 gamma) = 0.725
    z = wasserstein_adversarial_inputs(linear_score(THETA), X, Y, gamma=2.0, steps=1)
    assert torch.allclose(z, torch.tensor([[0.25, 0.8]], dtype=torch.float64))
    phi = wasserstein_robust_loss(linear_score(THETA), X, Y, gamma=2.0, steps=5)
    assert phi.item() == pytest.approx(0.725, abs=1e-12)


def test_spec_logistic_example() -> None:
    # spec: plain loss 0.744397, robust loss 0.989363 (at s* = 0.410677 along -y theta / |theta|)
    assert logistic(THETA)(X, Y).item() == pytest.approx(0.744397, abs=1e-6)
    z = wasserstein_adversarial_inputs(logistic(THETA), X, Y, gamma=2.0, steps=300, step_size=0.05)
    assert torch.linalg.norm(z - X).item() == pytest.approx(0.410677, abs=1e-5)
    phi = wasserstein_robust_loss(logistic(THETA), X, Y, gamma=2.0, steps=300, step_size=0.05)
    assert phi.item() == pytest.approx(0.989363, abs=1e-6)


@pytest.mark.parametrize(("gamma", "steps"), [(math.inf, 15), (2.0, 0), (torch.full((3,), math.inf), 4)])
def test_neutral_setting_is_the_plain_loss(gamma: float | Tensor, steps: int) -> None:
    x, y = torch.randn(3, 2, dtype=torch.float64), torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    if isinstance(gamma, Tensor):
        gamma = gamma.double()
    theta = THETA.clone().requires_grad_()
    robust = wasserstein_robust_loss(logistic(theta), x, y, gamma, steps=steps, reduction="none")
    plain = logistic(theta)(x, y)
    assert torch.equal(robust, plain)
    (g_robust,) = torch.autograd.grad(robust.sum(), theta)
    (g_plain,) = torch.autograd.grad(plain.sum(), theta)
    assert torch.equal(g_robust, g_plain)


def test_large_gamma_tends_to_the_plain_loss() -> None:
    plain = logistic(THETA)(X, Y)
    gaps = [(wasserstein_robust_loss(logistic(THETA), X, Y, g, steps=20) - plain).item() for g in (1.0, 10.0, 1e3)]
    assert gaps[0] > gaps[1] > gaps[2] > 0 and gaps[2] < 1e-3


def test_ascent_increases_the_objective_monotonically() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    x, y, gamma = torch.randn(6, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2]), 3.0

    def loss_fn(z: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(model(z), labels, reduction="none")

    values = []
    for steps in range(8):
        z = wasserstein_adversarial_inputs(loss_fn, x, y, gamma, steps=steps, step_size=0.02)
        values.append(loss_fn(z, y) - gamma * (z - x).pow(2).sum(1))
    for before, after in itertools.pairwise(values):
        assert bool((after >= before - 1e-12).all())
    assert bool((values[-1] > values[0]).all())
    assert all(p.grad is None for p in model.parameters()), "the inner ascent must not touch parameter gradients"


def test_per_row_gamma_equals_separate_calls() -> None:
    x, y = torch.randn(4, 2, dtype=torch.float64), torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
    gamma = torch.tensor([0.5, 2.0, math.inf, 2.0], dtype=torch.float64)
    rows = wasserstein_robust_loss(logistic(THETA), x, y, gamma, steps=10, reduction="none")
    for i in range(4):
        one = wasserstein_robust_loss(logistic(THETA), x[i : i + 1], y[i : i + 1], float(gamma[i]), steps=10)
        assert rows[i].item() == pytest.approx(one.item(), abs=1e-12)


def test_gradcheck_float64() -> None:
    # With the linear score loss one step of size 1 / (2 gamma) is the exact maximiser for every (theta, x), so
    # the Danskin gradient must equal the finite differences of phi in both theta and x.
    y = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    theta = torch.randn(2, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)

    def phi(t: Tensor, points: Tensor) -> Tensor:
        return wasserstein_robust_loss(linear_score(t), points, y, gamma=1.5, steps=1, reduction="none")

    assert torch.autograd.gradcheck(phi, (theta, x))
    # ramp: the gradient in theta is the plain loss's gradient at z* (Danskin), for any step count
    scores = torch.randn(5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 1, 0, 1])
    assert torch.autograd.gradcheck(lambda s: ramp_loss(s * 0.3, labels, scale=2.0, reduction="none"), (scores,))


def test_danskin_gradient_of_the_converged_logistic_loss() -> None:
    theta = THETA.clone().requires_grad_()
    kwargs = {"gamma": 2.0, "steps": 300, "step_size": 0.05}
    phi = wasserstein_robust_loss(logistic(theta), X, Y, **kwargs)
    (grad,) = torch.autograd.grad(phi, theta)
    eps = 1e-5
    for i in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[i] = eps
        up = wasserstein_robust_loss(logistic(THETA + step), X, Y, **kwargs)
        down = wasserstein_robust_loss(logistic(THETA - step), X, Y, **kwargs)
        assert grad[i].item() == pytest.approx(((up - down) / (2 * eps)).item(), abs=1e-6)


def test_ramp_loss_by_hand() -> None:
    scores = torch.tensor([2.0, 0.25, -1.0, 0.25, -0.5])
    labels = torch.tensor([1, 1, 1, 0, 0])
    expected = torch.tensor([0.0, 0.75, 1.0, 1.0, 0.5])
    assert torch.allclose(ramp_loss(scores, labels, reduction="none"), expected)
    assert torch.allclose(ramp_loss(scores, labels, scale=2.0, reduction="none"), torch.tensor([0, 0.5, 1, 1, 0.0]))
    assert ramp_loss(scores, labels).item() == pytest.approx(0.65)
    assert ramp_loss(scores, labels, reduction="sum").item() == pytest.approx(3.25)


def test_extreme_but_finite_inputs_and_non_finite_scores() -> None:
    labels = torch.tensor([1, 0, 1])
    assert torch.isfinite(ramp_loss(torch.tensor([1e30, 1e30, -3e38]), labels, reduction="none")).all()
    out = ramp_loss(torch.tensor([math.inf, 0.0, math.nan]), labels, reduction="none")
    assert math.isnan(out[0].item()) and math.isnan(out[2].item()) and out[1].item() == 1.0
    model = torch.nn.Linear(4, 3)
    x = torch.randn(5, 4) * 1e3
    for gamma in (1e-6, 1.0, 1e30):
        phi = wasserstein_robust_loss(
            lambda z, y: F.cross_entropy(model(z), y, reduction="none"),
            x.clone().requires_grad_(),
            torch.tensor([0, 1, 2, 0, 1]),
            gamma,
            step_size=1e-3,
        )
        (grad,) = torch.autograd.grad(phi, model.weight)
        assert torch.isfinite(phi) and torch.isfinite(grad).all()


def test_bf16_autocast_gives_float32_finite_values_and_gradients() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        phi = wasserstein_robust_loss(lambda z, t: F.cross_entropy(model(z), t, reduction="none"), x, y, 2.0)
        ramp = ramp_loss(model(x)[:, 0], y % 2)
    assert phi.dtype == torch.float32 and ramp.dtype == torch.float32
    (grad,) = torch.autograd.grad(phi + ramp, model.weight)
    assert torch.isfinite(phi) and torch.isfinite(grad).all() and model.weight.dtype == torch.float32


def _plain(z: Tensor, y: Tensor) -> Tensor:
    return -(z @ THETA) * y


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"gamma": -1.0}, ValueError, "gamma"),
        ({"gamma": math.nan}, ValueError, "gamma"),
        ({"gamma": "2"}, TypeError, "gamma"),
        ({"gamma": torch.ones(2, dtype=torch.float64)}, ValueError, "gamma"),
        ({"steps": -1}, ValueError, "steps"),
        ({"steps": 1.5}, TypeError, "steps"),
        ({"step_size": 0.0}, ValueError, "step_size"),
        ({"step_size": "0.1"}, TypeError, "step_size"),
        ({"gamma": 0.0}, ValueError, "step_size"),
        ({"reduction": "avg"}, ValueError, "reduction"),
        ({"loss_fn": lambda z, y: (z @ THETA).sum()}, ValueError, "loss_fn"),
        ({"loss_fn": "ce"}, TypeError, "loss_fn"),
        ({"inputs": torch.ones(1, 2, dtype=torch.long)}, ValueError, "inputs"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, error: type, name: str) -> None:
    call = {"loss_fn": _plain, "inputs": X, "labels": Y, "gamma": 2.0} | kwargs
    with pytest.raises(error, match=name):
        wasserstein_robust_loss(**call)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"scale": 0.0}, ValueError, "scale"),
        ({"scale": "1"}, TypeError, "scale"),
        ({"labels": torch.tensor([0, 2])}, ValueError, "labels"),
        ({"labels": torch.tensor([0.0, 1.0])}, TypeError, "labels"),
        ({"labels": torch.tensor([0, 1, 1])}, ValueError, "labels"),
        ({"scores": torch.ones(2, 1)}, ValueError, "scores"),
        ({"reduction": "avg"}, ValueError, "reduction"),
    ],
)
def test_ramp_bad_arguments_are_named(kwargs: dict, error: type, name: str) -> None:
    call = {"scores": torch.ones(2), "labels": torch.tensor([0, 1])} | kwargs
    with pytest.raises(error, match=name):
        ramp_loss(**call)
