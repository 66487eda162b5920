"""Probability margin: the loss the probability-margin attack (PMA) ascends.

Xie, Zheng, Huang, Ye, Ma, "Towards Million-Scale Adversarial Robustness Evaluation With Stronger Individual
Attacks" (arXiv 2411.15210): with p = softmax(z) and m = argmax_{j != y} p_j,

    L_pm(z, y) = p_m - p_y = (e^{z_m} - e^{z_y}) / sum_i e^{z_i}

It lies in (-1, 1), is positive exactly when the sample is misclassified (its sign is that of the logit margin
z_m - z_y), is unchanged by adding a constant to all logits, and its gradient is
``p_m e_m - p_y e_y - (p_m - p_y) p``. Usable as the attack objective, a diagnostic or a training surrogate.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS, reduce_losses
from hf_margin._validation import check_choice, check_class_labels, check_embeddings


def class_probabilities(logits: Tensor, labels: Tensor, *, validate: bool = True) -> tuple[Tensor, Tensor]:
    """(p_y, max_{j != y} p_j) of softmax(logits), computed in float32 or float64; errors name the argument.

    `validate=False` skips the checks (their label range check syncs with the device): for callers that already
    checked the same labels, such as an attack's steps after its first.
    """
    if validate:
        check_embeddings(logits, name="logits")
        if logits.shape[1] < 2:
            raise ValueError(f"`logits` must have shape (batch, classes) with classes >= 2, got {tuple(logits.shape)}")
        check_class_labels(labels, logits.shape[0], logits.shape[1])
    probabilities = torch.softmax(at_least_float32(logits), dim=1)
    true = probabilities.gather(1, labels.unsqueeze(1)).squeeze(1)
    others = probabilities.scatter(1, labels.unsqueeze(1), float("-inf"))
    return true, others.amax(dim=1)


def probability_margin_loss(
    logits: Tensor, labels: Tensor, reduction: str = "mean", sample_weight: Tensor | None = None
) -> Tensor:
    """Probability margin ``max_{j != y} p_j - p_y`` of softmax(logits) (PMA's loss; > 0 iff misclassified).

    Args:
        logits: (batch, classes >= 2) raw scores.
        labels: (batch,) true class indices.
        reduction: "mean", "sum" or "none" (per-sample margins in [-1, 1]).
        sample_weight: optional (batch,) per-sample weights.

    Example:
        >>> probability_margin_loss(model(x).logits, y, reduction="none")  # attack objective per sample
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    true, runner_up = class_probabilities(logits, labels)
    return reduce_losses(runner_up - true, reduction, sample_weight)
