"""Margin-MSE distillation (Hofstaetter et al., "Improving Efficient Neural Ranking Models with
Cross-Architecture Knowledge Distillation", arXiv 2010.02666).

    L = mean(((S(q, p+) - S(q, p-_k)) - (T(q, p+) - T(q, p-_k)))^2)   over every query and negative k

Only score differences are matched, so a constant offset between the student's and the teacher's scales is
free. The paper's T2 teacher is the mean of three cross-encoders' raw scores (:func:`aggregate_teachers`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS
from hf_margin._validation import check_choice

Aggregation = Literal["mean", "median", "max", "min"]


def _check_scores(scores: Tensor, name: str) -> None:
    if not isinstance(scores, Tensor) or scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(
            f"`{name}` must be a (batch, 1 + negatives) tensor with the positive first, got "
            f"{tuple(getattr(scores, 'shape', ()))}"
        )


def margin_mse_loss(student_scores: Tensor, teacher_scores: Tensor, reduction: str = "mean") -> Tensor:
    """Margin-MSE over (batch, 1 + N) scores (positive first): every positive-negative margin is matched.

    Args:
        student_scores: the student's scores, gradients flow through them.
        teacher_scores: the teacher's scores for the same (query, passage) pairs (treated as constants).
        reduction: "mean" (over batch x negatives), "sum" or "none" (batch, N).

    Score values are not checked (no host sync in a training step): a NaN or inf score gives a non-finite loss.
    `MarginMSETrainer` checks the dataset's teacher scores once, when it is built.
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    _check_scores(student_scores, "student_scores")
    _check_scores(teacher_scores, "teacher_scores")
    if student_scores.shape != teacher_scores.shape:
        raise ValueError(
            f"`teacher_scores` {tuple(teacher_scores.shape)} must match `student_scores` "
            f"{tuple(student_scores.shape)}: the same number of negatives per query"
        )
    student = at_least_float32(student_scores)
    teacher = teacher_scores.detach().to(student.dtype)
    student_margins = student[:, :1] - student[:, 1:]
    teacher_margins = teacher[:, :1] - teacher[:, 1:]
    return F.mse_loss(student_margins, teacher_margins, reduction=reduction)


def aggregate_teachers(scores: list[Tensor] | Tensor, aggregation: Aggregation | str = "mean") -> Tensor:
    """Combine several teachers' raw scores per (query, passage) pair: mean (the paper's T2), median, max or min."""
    check_choice(aggregation, "aggregation", ("mean", "median", "max", "min"))
    stacked = torch.stack(list(scores)) if isinstance(scores, list) else scores
    if aggregation == "mean":
        return stacked.mean(0)
    if aggregation == "median":
        return stacked.median(0).values
    return stacked.amax(0) if aggregation == "max" else stacked.amin(0)
