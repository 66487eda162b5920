"""Comp-sum losses: one family through the sum-exponential, cross-entropy, GCE and MAE losses.

Mao, Mohri, Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis and Applications" (ICML 2023,
arXiv 2304.07288). With ``p = softmax(h)`` and ``u = sum_{y' != y} exp(h_y' - h_y) = (1 - p_y) / p_y``,

    l_tau(h, x, y) = Phi_tau(u),   Phi_tau(u) = log(1 + u)                              tau = 1
                                   Phi_tau(u) = ((1 + u)^(1 - tau) - 1) / (1 - tau)     tau >= 0, tau != 1

and since ``1 + u = 1 / p_y``: ``l_tau = (p_y^(tau - 1) - 1) / (1 - tau)``, ``-log p_y`` at tau = 1.

Named members: tau = 0 the sum-exponential loss ``sum_{y' != y} exp(h_y' - h_y)``; tau = 1 the logistic loss
(cross-entropy); tau = 1 + q, q in (0, 1), generalised cross-entropy ``(1 - p_y^q) / q``; tau = 2 the MAE loss
``1 - p_y`` (half of ``||e_y - p||_1``).

Computed from ``n = -log p_y`` (log-softmax, exact for any logits) as ``expm1((1 - tau) n) / (1 - tau)``, which is
continuous in tau at 1 (it tends to n) and precise for tau near 1. For tau > 1 the loss is bounded,
``0 <= l < 1 / (tau - 1)``, and extreme logits are harmless. For tau < 1 it is unbounded and grows like
``exp((1 - tau) n)``: a confidently wrong sample can have a genuinely huge loss that overflows to inf (float32 past
``(1 - tau) n`` ≈ 88, float64 past ≈ 709); that is the true value, not a numerical accident, so clip logits or
prefer tau >= 1 when such margins can occur.

Not implemented: the paper's smooth adversarial comp-sum variant, whose extra term is not pinned down in our
reference.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS, reduce_losses
from hf_margin._validation import check_choice, check_class_labels, check_numbers


def check_tau(tau: float) -> None:
    """Raise unless tau is a finite number >= 0."""
    check_numbers(tau=tau)
    if not 0.0 <= tau < math.inf:
        raise ValueError(f"`tau` must be a finite number >= 0 (1 is cross-entropy), got {tau!r}")


def comp_sum_bound(tau: float) -> float:
    """The supremum of the comp-sum loss: ``1 / (tau - 1)`` for tau > 1, inf otherwise (unbounded)."""
    check_tau(tau)
    return 1.0 / (tau - 1.0) if tau > 1.0 else math.inf


def comp_sum_loss(
    logits: Tensor,
    labels: Tensor,
    tau: float = 1.0,
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """Comp-sum loss ``Phi_tau(sum_{y' != y} exp(h_y' - h_y))`` (tau = 1 is cross-entropy).

    Args:
        logits: (batch, num_classes) scores h.
        labels: (batch,) integer classes in [0, num_classes).
        tau: tau >= 0 (0 sum-exponential, 1 cross-entropy, 1 + q GCE, 2 MAE).
        reduction: "mean" (``sum w l / batch``), "sum" (``sum w l``) or "none" ((batch,) ``w l``).
        sample_weight: optional (batch,) per-sample weights w >= 0 (default 1).

    Returns:
        The reduced loss; invariant to adding a constant to every logit of a row.
    """
    check_tau(tau)
    check_choice(reduction, "reduction", REDUCTIONS)
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError(f"`logits` must be a floating-point torch.Tensor, got {getattr(logits, 'dtype', type(logits))}")
    if logits.dim() != 2 or logits.shape[0] == 0:
        raise ValueError(f"`logits` must have shape (batch, num_classes) with batch >= 1, got {tuple(logits.shape)}")
    check_class_labels(labels, logits.shape[0], logits.shape[1])
    logits = at_least_float32(logits)
    nll = -torch.log_softmax(logits, dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)  # -log p_y >= 0
    # (p_y^(tau - 1) - 1) / (1 - tau) = expm1((1 - tau) n) / (1 - tau): stable for any logits, continuous at tau = 1.
    losses = nll if tau == 1.0 else torch.expm1((1.0 - tau) * nll) / (1.0 - tau)
    return reduce_losses(losses, reduction, sample_weight)
