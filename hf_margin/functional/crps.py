"""Almost-fair CRPS of an ensemble forecast, and its two ends: the standard and the fair ensemble CRPS.

Lang et al., "AIFS-CRPS: Ensemble forecasting using a model trained with a loss function based on the Continuous
Ranked Probability Score" (arXiv 2412.15832), eq. (3): with members x_1..x_M, observation y and eps = (1 - alpha)/M,

    afCRPS_alpha = alpha fCRPS + (1 - alpha) CRPS
                 = (1/M) sum_j |x_j - y| - (1 - eps) / (2 M (M - 1)) sum_j sum_k |x_j - x_k|

alpha = 1 is the fair CRPS (Ferro et al. 2008), alpha = 0 the standard ensemble CRPS (the CRPS of the empirical
distribution of the members); the paper trains with alpha = 0.95. Two ways to compute it:

- ``method="sorted"`` (default, not in the paper): the pairwise sum is linear in the sorted members,
  ``sum_{j<k} |x_j - x_k| = sum_i (2i - M - 1) x_(i)``, so the score costs O(M log M) time and O(M) memory. It is a
  signed sum that can cancel, so it always runs in float32 or float64 (bf16/fp16 inputs are upcast), on the
  members minus the observation (shift-free, which keeps the cancellation small near the observation).
- ``method="pairwise"``: the paper's numerically stable eq. (4), a sum of non-negative terms
  ``1/(2M(M-1)) sum_j sum_{k != j} (|x_j - y| + |x_k - y| - (1 - eps)|x_j - x_k|)``; O(M^2) memory, the reference.

Both are exact rewrites of each other (equal to rounding). Gradients flow through the sort permutation; like |.|
the score is differentiable almost everywhere (away from ties between members or with the observation).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS, reduce_losses
from hf_margin._validation import check_choice, check_number_in_range

METHODS = ("sorted", "pairwise")


def afcrps(
    ensemble: Tensor,
    target: Tensor,
    alpha: float = 0.95,
    member_dim: int = -1,
    method: str = "sorted",
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """Almost-fair CRPS ``(1/M) sum_j |x_j - y| - (1 - (1 - alpha)/M) / (2M(M-1)) sum_jk |x_j - x_k|``.

    Args:
        ensemble: floating tensor of forecasts with the M >= 2 members along `member_dim` and any other
            (batch, time, variable, ...) dimensions around it; the last dimension by default, as an ensemble head
            that outputs (..., M) gives it.
        target: the observations, `ensemble`'s shape without the member dimension.
        alpha: in [0, 1]; 1 is the fair CRPS, 0 the standard ensemble CRPS, 0.95 the paper's choice.
        member_dim: the dimension of `ensemble` that holds the members.
        method: "sorted" (O(M log M), default) or "pairwise" (the paper's eq. (4), O(M^2) memory).
        reduction: "mean" (over every forecast value), "sum" or "none" (`target`'s shape).
        sample_weight: optional weights of `target`'s shape (e.g. per-variable or latitude weights).

    Returns:
        The score in float32 (float64 for float64 inputs): >= 0, and 0 when every member equals the observation
        (the pairwise form is a sum of non-negative terms; the sorted one can dip below 0 by round-off, ~1e-16 of
        the members' scale in float64).

    Example:
        >>> afcrps(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor(3.5), alpha=0.0)  # standard CRPS
        tensor(0.6250)
        >>> afcrps(model(x).view(batch, members), y)  # a (batch, members) ensemble head, y of shape (batch,)
    """
    members, observed = _check_ensemble(ensemble, target, member_dim)
    check_number_in_range(alpha, "alpha", 0.0, 1.0)
    check_choice(method, "method", METHODS)
    check_choice(reduction, "reduction", REDUCTIONS)
    size = members.shape[-1]
    errors = members - observed.unsqueeze(-1)  # the score only sees members relative to the observation
    absolute = errors.abs()
    if method == "sorted":
        rank_weight = torch.arange(1 - size, size, 2, dtype=errors.dtype, device=errors.device)  # 2i - M - 1
        pair_sum = (torch.sort(errors, dim=-1).values * rank_weight).sum(-1)  # sum_{j<k} |x_j - x_k|
        losses = absolute.mean(-1) - (alpha / (size * (size - 1)) + (1 - alpha) / size**2) * pair_sum
    else:
        spread = (errors.unsqueeze(-1) - errors.unsqueeze(-2)).abs()
        terms = absolute.unsqueeze(-1) + absolute.unsqueeze(-2) - (1 - (1 - alpha) / size) * spread
        off_diagonal = ~torch.eye(size, dtype=torch.bool, device=errors.device)
        losses = (terms * off_diagonal).sum((-2, -1)) / (2 * size * (size - 1))
    return reduce_losses(losses, reduction, sample_weight)


def crps(
    ensemble: Tensor,
    target: Tensor,
    member_dim: int = -1,
    method: str = "sorted",
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """Standard ensemble CRPS ``(1/M) sum_j |x_j - y| - 1/(2M^2) sum_jk |x_j - x_k|`` (AIFS-CRPS eq. (1)).

    The CRPS of the members' empirical distribution: biased high by E|X - X'|/(2M) for M draws of F. `afcrps`
    with alpha = 0; the arguments are `afcrps`'s.

    Example:
        >>> crps(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor(3.5))
        tensor(0.6250)
    """
    return afcrps(ensemble, target, 0.0, member_dim, method, reduction, sample_weight)


def fair_crps(
    ensemble: Tensor,
    target: Tensor,
    member_dim: int = -1,
    method: str = "sorted",
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """Fair ensemble CRPS ``(1/M) sum_j |x_j - y| - 1/(2M(M-1)) sum_jk |x_j - x_k|`` (Ferro et al. 2008; AIFS eq. (2)).

    Unbiased for the CRPS of the distribution the members are drawn from, but degenerate: when all members but one
    equal the observation, the last one is free. `afcrps` with alpha = 1; the arguments are `afcrps`'s.

    Example:
        >>> fair_crps(torch.tensor([3.5, 3.5, 3.5, 100.0]), torch.tensor(3.5))
        tensor(0.)
    """
    return afcrps(ensemble, target, 1.0, member_dim, method, reduction, sample_weight)


def _check_ensemble(ensemble: object, target: object, member_dim: int) -> tuple[Tensor, Tensor]:
    """(members moved to the last dimension, target), both float32/float64; errors name the argument."""
    if not isinstance(ensemble, Tensor) or not ensemble.is_floating_point():
        kind = ensemble.dtype if isinstance(ensemble, Tensor) else type(ensemble).__name__
        raise TypeError(f"`ensemble` must be a floating-point torch.Tensor with members along `member_dim`, got {kind}")
    if not isinstance(target, Tensor) or target.is_complex() or target.dtype == torch.bool:
        kind = target.dtype if isinstance(target, Tensor) else type(target).__name__
        raise TypeError(f"`target` must be a real-valued torch.Tensor, got {kind}")
    dims = ensemble.dim()
    if isinstance(member_dim, bool) or not isinstance(member_dim, int) or not -dims <= member_dim < dims:
        raise ValueError(
            f"`member_dim` must be an int in [{-dims}, {dims - 1}] for `ensemble` of shape "
            f"{tuple(ensemble.shape)}, got {member_dim!r}"
        )
    members = ensemble.movedim(member_dim, -1)
    if members.shape[-1] < 2:
        raise ValueError(
            f"`ensemble` needs M >= 2 members along member_dim={member_dim} (a CRPS of one member is "
            f"its absolute error), got shape {tuple(ensemble.shape)}"
        )
    if target.shape != members.shape[:-1]:
        raise ValueError(
            f"`target` must have shape {tuple(members.shape[:-1])} (`ensemble` {tuple(ensemble.shape)} "
            f"without member_dim={member_dim}), got shape {tuple(target.shape)}"
        )
    if ensemble.numel() == 0:
        # The mean score of no forecasts is 0 / 0: an error, not a NaN loss.
        raise ValueError(f"`ensemble` is empty (shape {tuple(ensemble.shape)}); need at least one forecast")
    dtype = torch.promote_types(at_least_float32(members).dtype, at_least_float32(target).dtype)
    return members.to(dtype), target.to(dtype)
