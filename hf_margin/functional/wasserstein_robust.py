"""The Wasserstein-robust loss phi_gamma of RSS training, its inner maximisation, and the poster's ramp loss.

Paper: "Out-Of-Domain Unlabeled Data Improves Generalization" (Saberi, Najafi, Heidari, Movasaghinia, Motahari,
Khalaj; ICLR 2024; arXiv 2310.00027). Its robust loss is

    phi_gamma(x, y; theta) = sup_z  l(z, y; theta) - gamma * c(z, x),

with c(z, x) = ||z - x||^2 here (squared Euclidean over every non-batch dimension, the standard choice of Sinha,
Namkoong, Duchi, "Certifying Some Distributional Robustness with Principled Adversarial Training", arXiv
1710.10571). The sup is taken as Sinha et al. do: `steps` gradient-ascent steps from z = x,
``z <- z + eta * grad_z [l(z, y) - gamma ||z - x||^2]``, with eta = 1 / (2 gamma) (that step reaches the exact
maximiser in one step when l is linear in z) or a smaller given step (a larger one would make the ascent diverge,
so it is capped at 1 / (2 gamma)). The value is computed at the detached z*, so its
gradient is grad_theta l(z*, y) (Danskin's theorem) and, with respect to x, 2 gamma (z* - x).

gamma = inf (or `steps` = 0) gives the plain loss l(x, y). The ascent finds a local maximum: where l is flat in z
(a saturated ramp or hinge) it does not move.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS, reduce_losses
from hf_margin._validation import (
    check_choice,
    check_class_labels,
    check_integers,
    check_number_in_range,
    check_positive_number,
)

RowLoss = Callable[[Tensor, Tensor], Tensor]


def ramp_loss(scores: Tensor, labels: Tensor, scale: float = 1.0, reduction: str = "mean") -> Tensor:
    """The ramp loss of the RSS poster's Gaussian-mixture experiment, per row ``min(1, max(0, 1 - scale y f))``.

    Paper: arXiv 2310.00027 (poster, experiments). Labels are class ids 0/1, read as y = 2 label - 1. Computed in
    float32 under bf16/fp16 (float64 stays float64); a non-finite score gives NaN (the clamps would hide an inf).

    Args:
        scores: float tensor (batch,), the real-valued scores f(x).
        labels: integer tensor (batch,) of 0/1 class ids.
        scale: the ramp's slope (the poster's gamma inside l_gamma), > 0: losses are 0 from margin 1 / scale on.
        reduction: "mean", "sum" or "none".

    Example:
        >>> ramp_loss(torch.tensor([2.0, 0.25, -1.0]), torch.tensor([1, 1, 1]), reduction="none")
        tensor([0.0000, 0.7500, 1.0000])
    """
    check_positive_number(scale, "scale")
    check_choice(reduction, "reduction", REDUCTIONS)
    if not isinstance(scores, Tensor) or not scores.is_floating_point() or scores.dim() != 1:
        got = f"{scores.dtype} of shape {tuple(scores.shape)}" if isinstance(scores, Tensor) else type(scores)
        raise ValueError(f"`scores` must be a floating tensor of shape (batch,), got {got}")
    if reduction == "mean" and scores.shape[0] == 0:
        raise ValueError("`scores` is an empty batch: its mean is undefined (use reduction 'sum' or 'none')")
    check_class_labels(labels, scores.shape[0], 2)
    f = at_least_float32(scores)
    signs = 2.0 * labels.to(f.dtype) - 1.0
    losses = (1.0 - scale * signs * f).clamp(0.0, 1.0)
    losses = torch.where(torch.isfinite(f), losses, torch.full_like(losses, math.nan))
    return reduce_losses(losses, reduction)


def _check_gamma(gamma: float | Tensor, rows: int, name: str = "gamma") -> Tensor | float:
    if isinstance(gamma, Tensor):
        if not gamma.is_floating_point() or tuple(gamma.shape) != (rows,):
            raise ValueError(
                f"`{name}` must be a float or a floating tensor of shape ({rows},) (one per row), got "
                f"{gamma.dtype} of shape {tuple(gamma.shape)}"
            )
        return gamma  # its values are the caller's to check: reading them would wait for the device
    check_number_in_range(gamma, name, 0.0, math.inf)
    return float(gamma)


def _step_sizes(gamma: Tensor | float, step_size: float | None) -> Tensor | float:
    """eta per row: min(`step_size`, 1 / (2 gamma)), or 1 / (2 gamma) when `step_size` is None.

    A step above 1 / gamma makes the cost's pull 2 gamma (z - x) overshoot and the ascent diverge, so the cap keeps
    it stable; rows with gamma = inf get 0 (they stay at x).
    """
    if step_size is None:
        if not isinstance(gamma, Tensor) and gamma == 0:
            raise ValueError("`step_size` must be given when `gamma` is 0 (the default 1 / (2 gamma) is infinite)")
        return 0.5 / gamma
    check_positive_number(step_size, "step_size")
    if isinstance(gamma, Tensor):
        return (0.5 / gamma).clamp(max=step_size)
    return min(float(step_size), 0.5 / gamma) if gamma > 0 else float(step_size)


def _per_row(value: Tensor | float, like: Tensor) -> Tensor | float:
    """A per-row tensor shaped to broadcast over `like`'s non-batch dimensions (a float stays a float)."""
    if isinstance(value, Tensor):
        return value.to(device=like.device, dtype=at_least_float32(like).dtype).view(-1, *([1] * (like.dim() - 1)))
    return value


def _transport_cost(points: Tensor, inputs: Tensor) -> Tensor:
    """c(z, x) = ||z - x||^2 per row, summed over every non-batch dimension, in float32 or wider."""
    diff = at_least_float32(points) - at_least_float32(inputs)
    return diff.pow(2).flatten(1).sum(dim=1)


def _penalised(gamma: Tensor | float, cost: Tensor) -> Tensor:
    """gamma * cost, with 0 (not inf * 0 = NaN) where gamma is inf (those rows do not move)."""
    if isinstance(gamma, Tensor):
        gamma = gamma.to(cost)
        return torch.where(torch.isinf(gamma), torch.zeros_like(cost), gamma * cost)
    return cost * 0.0 if math.isinf(gamma) else gamma * cost


def _row_losses(loss_fn: RowLoss, points: Tensor, labels: Tensor) -> Tensor:
    losses = loss_fn(points, labels)
    if not isinstance(losses, Tensor) or not losses.is_floating_point() or tuple(losses.shape) != (len(points),):
        got = f"{losses.dtype} of shape {tuple(losses.shape)}" if isinstance(losses, Tensor) else type(losses).__name__
        raise ValueError(
            f"`loss_fn` must return one floating loss per row, shape ({len(points)},) (reduction 'none'), got {got}"
        )
    return at_least_float32(losses)


def _check_common(loss_fn: object, inputs: object, steps: object) -> None:
    if not callable(loss_fn):
        raise TypeError(f"`loss_fn` must be a callable loss_fn(points, labels) -> (batch,), got {type(loss_fn)}")
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point() or inputs.dim() < 1:
        got = f"{inputs.dtype} of shape {tuple(inputs.shape)}" if isinstance(inputs, Tensor) else type(inputs)
        raise ValueError(f"`inputs` must be a floating tensor of shape (batch, ...), got {got}")
    if inputs.shape[0] == 0:
        raise ValueError(f"`inputs` is an empty batch (shape {tuple(inputs.shape)}); need at least one row")
    check_integers(steps=steps)
    if steps < 0:  # type: ignore[operator]
        raise ValueError(f"`steps` must be an integer >= 0, got {steps}")


def wasserstein_adversarial_inputs(
    loss_fn: RowLoss,
    inputs: Tensor,
    labels: Tensor,
    gamma: float | Tensor,
    steps: int = 15,
    step_size: float | None = None,
) -> Tensor:
    """The inner maximiser z* of phi_gamma: `steps` gradient-ascent steps on ``l(z, y) - gamma ||z - x||^2``.

    Paper: arXiv 2310.00027 (the robust loss), solved as in Sinha et al. (arXiv 1710.10571). Formula:
    ``z_0 = x``, ``z_{k+1} = z_k + eta (grad_z l(z_k, y) - 2 gamma (z_k - x))``, per row. Only z is
    differentiated (the model's parameters collect no gradient); the result is detached.

    Args:
        loss_fn: ``loss_fn(points, labels)`` -> per-row losses (batch,); rows must not interact (no batch
            statistics), so that the gradient of their sum is each row's own gradient.
        inputs: float tensor (batch, ...), the points x (features, or a text model's input embeddings).
        labels: the labels passed to `loss_fn` (any type it takes).
        gamma: the cost's weight, >= 0, a float or one per row (batch,); inf leaves that row at x. A per-row
            tensor's values are not checked (that would wait for the device): give `step_size` if one can be 0.
        steps: ascent steps, >= 0 (0 returns x).
        step_size: eta, > 0, capped at 1 / (2 gamma) per row; None uses 1 / (2 gamma) (needs gamma > 0).

    Example:
        >>> theta = torch.tensor([1.0, -2.0])
        >>> wasserstein_adversarial_inputs(lambda z, y: -(z @ theta) * y, torch.tensor([[0.5, 0.3]]),
        ...                                torch.tensor([1.0]), gamma=2.0, steps=1)
        tensor([[0.2500, 0.8000]])
    """
    _check_common(loss_fn, inputs, steps)
    gamma = _check_gamma(gamma, inputs.shape[0])
    eta = _per_row(_step_sizes(gamma, step_size), inputs)
    weight = _per_row(gamma, inputs)
    x = inputs.detach()
    z = x.clone()
    if steps == 0 or (isinstance(eta, float) and eta == 0.0):
        return z
    with torch.enable_grad():
        for _ in range(steps):
            z.requires_grad_(True)
            (grad,) = torch.autograd.grad(_row_losses(loss_fn, z, labels).sum(), z, allow_unused=True)
            z = z.detach()
            grad = torch.zeros_like(z) if grad is None else grad
            ascent = at_least_float32(grad) - _penalised(weight, 2.0 * (at_least_float32(z) - at_least_float32(x)))
            z = (z + eta * ascent).to(x.dtype)
    return z


def wasserstein_robust_loss(
    loss_fn: RowLoss,
    inputs: Tensor,
    labels: Tensor,
    gamma: float | Tensor,
    steps: int = 15,
    step_size: float | None = None,
    reduction: str = "mean",
) -> Tensor:
    """RSS's robust loss ``phi_gamma(x, y) = sup_z l(z, y) - gamma ||z - x||^2``, at the ascent's z*.

    Paper: "Out-Of-Domain Unlabeled Data Improves Generalization" (arXiv 2310.00027); inner maximisation as
    Sinha et al. (arXiv 1710.10571). Formula: ``phi = l(z*, y) - gamma ||z* - x||^2`` with
    z* = `wasserstein_adversarial_inputs` (detached): its gradient is grad_theta l(z*, y) in the model's
    parameters and 2 gamma (z* - x) in `inputs` (Danskin). gamma = inf or steps = 0 gives l(x, y).

    Args:
        loss_fn: ``loss_fn(points, labels)`` -> per-row losses (batch,), e.g.
            ``lambda z, y: F.cross_entropy(model(z), y, reduction="none")``.
        inputs: float tensor (batch, ...), the points x.
        labels: the labels passed to `loss_fn`.
        gamma: the cost's weight, >= 0, a float or one per row (RSS: gamma on labelled rows, gamma' on
            pseudo-labelled ones; values of a tensor are not checked); inf is the plain loss.
        steps: ascent steps, >= 0 (15 by default: our choice).
        step_size: ascent step eta, > 0, capped at 1 / (2 gamma) per row; None uses 1 / (2 gamma).
        reduction: "mean", "sum" or "none".

    Example:
        >>> theta = torch.tensor([1.0, -2.0])
        >>> wasserstein_robust_loss(lambda z, y: -(z @ theta) * y, torch.tensor([[0.5, 0.3]]),
        ...                         torch.tensor([1.0]), gamma=2.0, steps=1)  # -y theta.x + |theta|^2 / (4 gamma)
        tensor(0.7250)
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    points = wasserstein_adversarial_inputs(loss_fn, inputs, labels, gamma, steps, step_size)
    phi = _row_losses(loss_fn, points, labels) - _penalised(gamma, _transport_cost(points, inputs))
    return reduce_losses(phi, reduction)
