"""IGNITE's gradient-norm regulariser: hand values, the finite difference against double backward, the dual step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hf_margin.functional.ignite import dual_ascent_step, ignite_penalty_gradients, surrogate_gradient_norm


def test_norm_of_linear_model_matches_hand_value() -> None:
    torch.manual_seed(0)
    x = torch.randn(7, 3, dtype=torch.float64)
    model = nn.Linear(3, 1).double()
    norm = surrogate_gradient_norm(model(x).mean(), list(model.parameters()))
    # G = mean(x) . w + b: grad_w = mean_x x, grad_b = 1
    expected = torch.sqrt(x.mean(0).pow(2).sum() + 1.0)
    torch.testing.assert_close(norm, expected)


def test_finite_difference_is_exact_for_quadratic_mean_prediction() -> None:
    torch.manual_seed(1)
    x = torch.randn(5, 3, dtype=torch.float64)
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def mean_prediction() -> torch.Tensor:
        return ((x @ w) ** 2).mean()  # quadratic in w

    norm, grads = ignite_penalty_gradients(mean_prediction, [w], rho=0.3, radius=0.7)
    exact = torch.autograd.grad(surrogate_gradient_norm(mean_prediction(), [w], create_graph=True), w)[0]
    torch.testing.assert_close(grads[0], 0.3 * exact)
    torch.testing.assert_close(norm, surrogate_gradient_norm(mean_prediction(), [w]).detach())


def test_finite_difference_converges_for_a_tanh_network() -> None:
    torch.manual_seed(2)
    x = torch.randn(9, 4, dtype=torch.float64)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1)).double()
    params = list(model.parameters())
    norm = surrogate_gradient_norm(model(x).mean(), params, create_graph=True)
    exact = torch.autograd.grad(norm, params, allow_unused=True)  # the last bias's gradient is constant
    flat_exact = torch.cat(
        [(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, exact, strict=True)]
    )
    errors = []
    for radius in (1e-1, 1e-3):
        _, grads = ignite_penalty_gradients(lambda: model(x).mean(), params, rho=1.0, radius=radius)
        errors.append(float((torch.cat([g.flatten() for g in grads]) - flat_exact).norm() / flat_exact.norm()))
    assert errors[1] < errors[0] / 20 and errors[1] < 1e-2


def test_parameters_restored_exactly() -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1))
    before = [p.detach().clone() for p in model.parameters()]
    ignite_penalty_gradients(lambda: model(torch.randn(3, 4)).mean(), list(model.parameters()), radius=0.5)
    for p, old in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, old)


def test_gradcheck_of_the_norm() -> None:
    x = torch.randn(4, 3, dtype=torch.float64)
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v: surrogate_gradient_norm(torch.tanh(x @ v).mean(), [v], create_graph=True), (w,)
    )


def test_extreme_inputs_stay_finite() -> None:
    w = torch.tensor([1e4, -1e4], requires_grad=True)
    x = torch.tensor([[1e3, 2e3]])
    norm, grads = ignite_penalty_gradients(lambda: torch.tanh(x @ w).sum(), [w])
    assert torch.isfinite(norm) and all(torch.isfinite(g).all() for g in grads)
    zero = torch.zeros(2, requires_grad=True)  # G does not depend on the parameter: zero norm, zero step
    norm, grads = ignite_penalty_gradients(lambda: (zero * 0).sum(), [zero])
    assert float(norm) == 0 and torch.equal(grads[0], torch.zeros(2))


def test_dual_step_sign_and_clamp() -> None:
    assert dual_ascent_step(0.5, gradient_norm=10.0, rho=0.05, epsilon=0.1, learning_rate=0.1) == pytest.approx(0.54)
    assert dual_ascent_step(0.5, gradient_norm=1.0, rho=0.05, epsilon=0.1, learning_rate=0.1) == pytest.approx(0.495)
    assert dual_ascent_step(0.001, gradient_norm=0.0, epsilon=0.1, learning_rate=1.0) == 0.0
    assert dual_ascent_step(0.001, gradient_norm=0.0, epsilon=0.1, learning_rate=1.0, clamp=False) == pytest.approx(
        -0.099
    )


def test_errors_name_the_argument() -> None:
    w = torch.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="mean_prediction"):
        surrogate_gradient_norm(w * 2, [w])
    with pytest.raises(ValueError, match="params"):
        surrogate_gradient_norm(w.sum(), [])
    with pytest.raises(ValueError, match="params"):
        surrogate_gradient_norm(w.sum(), [w.detach()])
    with pytest.raises(ValueError, match="radius"):
        ignite_penalty_gradients(lambda: w.sum(), [w], radius=0.0)
    with pytest.raises(ValueError, match="rho"):
        ignite_penalty_gradients(lambda: w.sum(), [w], rho=-1.0)
    with pytest.raises(ValueError, match="epsilon"):
        dual_ascent_step(0.0, 1.0, epsilon=-0.1)


def test_dual_ascent_step_rejects_non_finite_or_wrongly_typed_numbers() -> None:
    """#19 items 1, 5: a NaN gradient norm would poison the multiplier for good: it raises naming the argument."""
    with pytest.raises(ValueError, match="`gradient_norm`"):
        dual_ascent_step(0.5, float("nan"))
    with pytest.raises(TypeError, match="`multiplier`"):
        dual_ascent_step("1", 0.3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`epsilon`"):
        dual_ascent_step(1.0, 0.3, epsilon="0.1")  # type: ignore[arg-type]
