"""Shared pieces of the distillation losses: student/teacher shape checks and the per-sample softmax KL."""

from __future__ import annotations

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_embeddings, check_positive_number


def check_same_shape(reference: object, reference_name: str, **others: object) -> None:
    """Raise unless `reference` is a non-empty floating tensor and each of `others` a tensor of its shape.

    Args:
        reference: the tensor the others must match (e.g. the student's predictions).
        reference_name: its argument name, for the errors.
        **others: the tensors to compare, by argument name.

    Example:
        >>> check_same_shape(predictions, "predictions", ground_truth=ground_truth, teacher=teacher)
    """
    if not isinstance(reference, Tensor) or not reference.is_floating_point():
        raise TypeError(
            f"`{reference_name}` must be a floating-point tensor, got "
            f"{getattr(reference, 'dtype', type(reference).__name__)}"
        )
    if reference.numel() == 0:
        raise ValueError(f"`{reference_name}` is empty (shape {tuple(reference.shape)})")
    for name, value in others.items():
        if not isinstance(value, Tensor) or value.shape != reference.shape:
            raise ValueError(
                f"`{name}` must have the shape of `{reference_name}` {tuple(reference.shape)}, got "
                f"{tuple(getattr(value, 'shape', ()))}"
            )


def check_student_teacher(student: object, teacher: object, student_name: str, teacher_name: str) -> None:
    """Raise unless both are floating (batch, classes) tensors of the same shape."""
    check_embeddings(student, name=student_name)
    check_embeddings(teacher, name=teacher_name)
    check_same_shape(student, student_name, **{teacher_name: teacher})


def softmax_kl_per_sample(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """(batch,) ``KL(softmax(t / T) || softmax(s / T))`` per row, in float32 or better; the teacher is not detached.

    Computed from log-probabilities on both sides, so it is exact (and finite) for saturated teachers. A class the
    teacher gives probability 0 (e.g. masked with -inf in both) adds 0 (the convention 0 log 0 = 0).
    """
    check_positive_number(temperature, "temperature")
    student = at_least_float32(student_logits)
    teacher = at_least_float32(teacher_logits).to(student.dtype)
    log_p_teacher = torch.log_softmax(teacher / temperature, dim=1)
    log_p_student = torch.log_softmax(student / temperature, dim=1)
    p_teacher = log_p_teacher.exp()
    # Filling before the product keeps -inf - -inf out of both the value and the gradients.
    log_ratio = (log_p_teacher - log_p_student).masked_fill(p_teacher == 0, 0.0)
    return (p_teacher * log_ratio).sum(dim=1)


def masked_in_both(student: Tensor, teacher: Tensor) -> Tensor:
    """Bool mask of the logits that are -inf in both `student` and `teacher` (a class masked out on both sides)."""
    return (student == float("-inf")) & (teacher == float("-inf"))
