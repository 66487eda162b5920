"""Preference-optimisation losses with per-pair weights: MADPO, and beta-DPO's batch-level beta and filtering.

MADPO: Rho, "Margin-Adaptive Direct Preference Optimization", arXiv 2510.05342.
With ``h`` the reward model's margin of the labelled winner over the loser and ``h_theta`` the policy's
implicit margin (log-ratio of chosen minus log-ratio of rejected),

    loss = -w(h) log sigmoid(beta h_theta),   w(h) = sigmoid(c(|h|) h) / sigmoid(h)  for h > -tau, else 1,
    c(a) = c_min + (c_max - c_min) / (1 + ((c_max - 1) / (1 - c_min)) exp(lambda (a - tau))).

c(tau) = 1, so w is continuous at -tau; w(h) sigmoid(h) = sigmoid(c(|h|) h): in expectation over Bradley-Terry
labels the effective target margin is c(|h|) h, amplified for small |h| and damped past tau.

beta-DPO (Wu et al., "beta-DPO: Direct Preference Optimization with Dynamic beta", arXiv 2407.08639), as the
MADPO authors' baseline implements it: M_i = beta0 * h_theta_i (detached); EMAs (momentum 0.9) of the batch
mean and std of M; beta = (1 + alpha (mean M - centre)) beta0; keep rho of the pairs, drawn without
replacement with probability proportional to exp(-((M - centre) / scale)^2 / 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._validation import check_numbers

DEFAULT_TAU = math.log(0.999 / 0.001)  # the reward margin at 99.9% Bradley-Terry confidence


def _check_margins(margins: Tensor) -> None:
    if not isinstance(margins, Tensor) or margins.dim() != 1:
        raise ValueError(f"`margins` must be a 1-D tensor (one per pair), got {getattr(margins, 'shape', margins)}")
    if not torch.isfinite(margins).all():
        bad = (~torch.isfinite(margins)).nonzero().flatten()[:5].tolist()
        raise ValueError(f"`margins` must be finite; NaN or inf at pair indices {bad}")


def check_madpo_parameters(c_max: float, c_min: float, lam: float, tau: float) -> None:
    """Raise unless 0 < c_min <= 1 <= c_max, lambda > 0 and tau > 0 (finite numbers)."""
    check_numbers(c_max=c_max, c_min=c_min, lam=lam, tau=tau)
    if not (0 < c_min <= 1 <= c_max < math.inf):
        raise ValueError(f"MADPO needs 0 < c_min <= 1 <= c_max, got c_min={c_min}, c_max={c_max}")
    if not (0 < lam < math.inf and 0 < tau < math.inf):
        raise ValueError(f"MADPO needs lambda > 0 and tau > 0, got lambda={lam}, tau={tau}")


def madpo_coefficient(
    abs_margin: Tensor, c_max: float = 2.0, c_min: float = 0.5, lam: float = 1.0, tau: float = DEFAULT_TAU
) -> Tensor:
    """c(|h|): decreases from about c_max (small margins) through 1 (at tau) to c_min (large margins).

    With c_max = 1 or c_min = 1 the curve is flat at 1 (the formula's 0/0 and inf cases), which is plain DPO.
    """
    if c_max == 1.0 or c_min == 1.0:
        return torch.ones_like(abs_margin)
    odds = (c_max - 1.0) / (1.0 - c_min)
    return c_min + (c_max - c_min) / (1.0 + odds * torch.exp(lam * (abs_margin - tau)))


def madpo_weight(
    margins: Tensor, c_max: float = 2.0, c_min: float = 0.5, lam: float = 1.0, tau: float = DEFAULT_TAU
) -> Tensor:
    """w(h) = sigmoid(c(|h|) h) / sigmoid(h) for h > -tau, 1 otherwise; computed in log space, detached."""
    _check_margins(margins)
    check_madpo_parameters(c_max, c_min, lam, tau)
    h = margins.detach().to(torch.float64)
    c = madpo_coefficient(h.abs(), c_max, c_min, lam, tau)
    weight = torch.exp(F.logsigmoid(c * h) - F.logsigmoid(h))
    return torch.where(h > -tau, weight, torch.ones_like(weight)).to(
        margins.dtype if margins.is_floating_point() else torch.float32
    )


def weighted_dpo_loss(
    chosen_logratios: Tensor, rejected_logratios: Tensor, weights: Tensor, beta: float | Tensor
) -> Tensor:
    """Per-pair ``-w log sigmoid(beta (chosen_logratio - rejected_logratio))`` (weights: 1 gives DPO)."""
    return -weights * F.logsigmoid(beta * (chosen_logratios - rejected_logratios))


@dataclass
class BetaDPOState:
    """The EMA statistics of beta-DPO (centre and scale of M), kept across steps and in checkpoints.

    A batch with a non-finite implicit margin gives a non-finite beta (so a non-finite loss) and leaves the EMAs
    unchanged, so one bad batch cannot poison later steps or a checkpoint.
    """

    centre: float = 0.0
    scale: float = 1.0

    def step(
        self, implicit_margins: Tensor, beta0: float, alpha: float, momentum: float, keep: float
    ) -> tuple[float, Tensor]:
        """Update the EMAs with this batch and return (batch beta, 0/1 mask of the pairs kept)."""
        m = beta0 * implicit_margins.detach().float()
        mean = float(m.mean())
        std = float(m.std()) if m.numel() > 1 else 0.0
        if math.isfinite(mean) and math.isfinite(std):  # both are on the host already: no extra sync
            self.centre = momentum * self.centre + (1 - momentum) * mean
            self.scale = momentum * self.scale + (1 - momentum) * (std + 1e-6)
        beta = (1 + alpha * (mean - self.centre)) * beta0
        scores = torch.exp(-0.5 * ((m - self.centre) / (self.scale + 1e-6)) ** 2).nan_to_num(nan=0.0)
        kept = max(1, int(keep * m.numel()))
        mask = torch.zeros_like(m)
        mask[torch.multinomial(scores + 1e-12, kept, replacement=False)] = 1.0
        return beta, mask


def madpo_two_response_loss(
    logratio_1: Tensor,
    logratio_2: Tensor,
    reward_margin_12: Tensor,
    choice: Tensor,
    beta: float,
    c_max: float = 2.0,
    c_min: float = 0.5,
    lam: float = 1.0,
    tau: float = DEFAULT_TAU,
) -> Tensor:
    """MADPO on pairs stored as (response 1, response 2, which won), as the official code stores them.

    ``reward_margin_12 = r(y1) - r(y2)``; ``choice`` is 0 when y1 won, 1 when y2 won. The winner's margin is
    ``h = reward_margin_12`` or ``-reward_margin_12``; the per-pair loss is `weighted_dpo_loss` of winner over
    loser. Swapping the two responses, negating the margin and flipping the choice gives the same loss.
    """
    if not (logratio_1.shape == logratio_2.shape == reward_margin_12.shape == choice.shape):
        raise ValueError(
            "`logratio_1`, `logratio_2`, `reward_margin_12` and `choice` must have one value per pair, got shapes "
            f"{tuple(logratio_1.shape)}, {tuple(logratio_2.shape)}, {tuple(reward_margin_12.shape)}, "
            f"{tuple(choice.shape)}"
        )
    second_won = choice.bool()
    winner = torch.where(second_won, logratio_2, logratio_1)
    loser = torch.where(second_won, logratio_1, logratio_2)
    margin = torch.where(second_won, -reward_margin_12, reward_margin_12)
    return weighted_dpo_loss(winner, loser, madpo_weight(margin, c_max, c_min, lam, tau), beta)
