"""IGNITE's surrogate gradient-norm regulariser and its dual-ascent multiplier, as stateless functions.

Paper: "IGNITE: Incorporating Surrogate Gradient Norm to Improve Offline Optimization" (Dao, Nguyen, Truong,
Hoang; arXiv 2503.04242). The surrogate g_beta is trained under the constraint that the parameter-gradient norm of
its batch-mean prediction G_B(beta) = mean_x g_beta(x) stays below epsilon:

    min_beta L(beta)  s.t.  rho * ||grad_beta G_B(beta)|| <= epsilon,

solved by primal-dual steps. The primal gradient adds lambda * (rho / r) * (grad G_B(beta + r u) - grad G_B(beta))
with u = grad G_B / ||grad G_B||: a finite difference for lambda * rho * grad ||grad G_B|| (error O(r); exact when
G_B is quadratic in beta). The dual step is lambda <- lambda + eta * (rho ||grad G_B|| - epsilon).

The equations follow the official code (`cuong-dm/IGNITE`); the paper's full text was not read. The official
code does not project lambda onto lambda >= 0; `dual_ascent_step` clamps at zero by default (`clamp=True`, the
constrained problem's multiplier must be non-negative) and `clamp=False` reproduces the code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_number_in_range, check_numbers, check_positive_number


def _check_mean_prediction(value: object) -> Tensor:
    if not isinstance(value, Tensor) or not value.is_floating_point() or value.numel() != 1:
        got = f"{value.dtype} of shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(
            f"`mean_prediction` must return a floating scalar tensor (the batch-mean prediction), got {got}"
        )
    return value


def _check_params(params: Sequence[Tensor]) -> list[Tensor]:
    checked = list(params)
    if not checked or not all(isinstance(p, Tensor) and p.requires_grad for p in checked):
        raise ValueError("`params` must be a non-empty sequence of tensors with requires_grad=True")
    return checked


def surrogate_gradient_norm(mean_prediction: Tensor, params: Sequence[Tensor], create_graph: bool = False) -> Tensor:
    """IGNITE's sharpness ||grad_beta G_B(beta)||: the L2 norm of the batch-mean prediction's parameter gradient.

    Paper: IGNITE (arXiv 2503.04242). Formula: ||grad_beta (1/|B|) sum_x g_beta(x)||_2 over all of `params`.

    Args:
        mean_prediction: the scalar G_B(beta) (e.g. ``model(x).mean()``), still attached to the graph.
        params: the parameters beta (requires_grad); parameters that G_B does not use count as zero gradient.
        create_graph: keep the graph so the norm itself can be differentiated (double backward).

    Example:
        >>> norm = surrogate_gradient_norm(model(x).mean(), list(model.parameters()))
    """
    value = _check_mean_prediction(mean_prediction).reshape(())
    grads = torch.autograd.grad(value, _check_params(params), create_graph=create_graph, allow_unused=True)
    squares = [at_least_float32(g).pow(2).sum() for g in grads if g is not None]  # float16 squares overflow
    return torch.stack(squares).sum().sqrt() if squares else value.new_zeros(())


def ignite_penalty_gradients(
    mean_prediction: Callable[[], Tensor], params: Sequence[Tensor], rho: float = 0.05, radius: float = 0.05
) -> tuple[Tensor, list[Tensor]]:
    """IGNITE's finite-difference gradient of the regulariser rho * ||grad G_B||, and the norm itself.

    Paper: IGNITE (arXiv 2503.04242). Formula: u = g/||g|| with g = grad G_B(beta);
    returns (||g||, (rho / radius) * (grad G_B(beta + radius * u) - g)) ~ (||g||, rho * grad ||grad G_B||).
    The parameters are perturbed in place and restored exactly (saved copies, not a subtraction) before returning.

    Args:
        mean_prediction: a closure that runs the model and returns the scalar G_B at the current parameters.
        params: the parameters beta (requires_grad).
        rho: weight rho of the constraint (0.05 in the official IGNITE scripts; 0.2 for IGNITE-2).
        radius: finite-difference step r (0.05 in the official scripts; 0.2 for IGNITE-2).

    Example:
        >>> norm, grads = ignite_penalty_gradients(lambda: model(x).mean(), list(model.parameters()))
        >>> for p, g in zip(model.parameters(), grads): p.grad += lam * g
    """
    check_positive_number(rho, "rho")
    check_positive_number(radius, "radius")
    checked = _check_params(params)

    def gradients() -> list[Tensor]:
        value = _check_mean_prediction(mean_prediction()).reshape(())
        grads = torch.autograd.grad(value, checked, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(checked, grads, strict=True)]

    base = gradients()
    norm = torch.stack([at_least_float32(g).pow(2).sum() for g in base]).sum().sqrt()
    # A zero gradient has no direction to perturb along: the step and the difference are zero (decided on the
    # device, no host sync).
    moved = norm > 0
    step = torch.where(moved, radius / norm, 0.0)
    saved = [p.detach().clone() for p in checked]
    with torch.no_grad():
        for p, g in zip(checked, base, strict=True):
            p.add_(g * step)
    try:
        perturbed = gradients()
    finally:
        with torch.no_grad():
            for p, old in zip(checked, saved, strict=True):
                p.copy_(old)
    scale = (rho / radius) * moved
    return norm.detach(), [(new - old) * scale for new, old in zip(perturbed, base, strict=True)]


def dual_ascent_step(
    multiplier: float,
    gradient_norm: float,
    rho: float = 0.05,
    epsilon: float = 0.1,
    learning_rate: float = 1e-3,
    clamp: bool = True,
) -> float:
    """IGNITE's dual update of the Lagrange multiplier lambda.

    Paper: IGNITE (arXiv 2503.04242). Formula: lambda <- lambda + eta * (rho * ||grad G_B|| - epsilon), then
    max(lambda, 0) when `clamp` (the official code does not clamp; ``clamp=False`` reproduces it).

    Args:
        multiplier: the current lambda.
        gradient_norm: ||grad_beta G_B(beta)|| at the current parameters.
        rho: weight rho of the constraint.
        epsilon: the constraint level epsilon (0.1 in the official scripts).
        learning_rate: dual step size eta (1e-3 in the official scripts).
        clamp: project lambda onto lambda >= 0.

    Example:
        >>> lam = dual_ascent_step(lam, float(norm), rho=0.05, epsilon=0.1, learning_rate=1e-3)
    """
    check_positive_number(rho, "rho")
    check_positive_number(learning_rate, "learning_rate")
    check_number_in_range(epsilon, "epsilon", 0.0, math.inf)
    # Host numbers (no device sync): a non-finite one would poison the multiplier for the rest of training.
    for name, value in (("multiplier", multiplier), ("gradient_norm", gradient_norm)):
        check_numbers(**{name: value})
        if not math.isfinite(value):
            raise ValueError(f"`{name}` must be finite, got {value!r} (a diverged step?)")
    updated = multiplier + learning_rate * (rho * gradient_norm - epsilon)
    return max(updated, 0.0) if clamp else updated
