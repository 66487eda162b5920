"""Shared pieces of the distillation losses: a student/teacher logit check and the per-sample softmax KL."""

from __future__ import annotations

import torch
from torch import Tensor

from hf_margin._validation import check_embeddings, check_positive
from hf_margin.functional._precision import at_least_float32


def check_student_teacher(student: object, teacher: object, student_name: str, teacher_name: str) -> None:
    """Raise unless both are floating (batch, classes) tensors of the same shape."""
    check_embeddings(student, name=student_name)
    check_embeddings(teacher, name=teacher_name)
    assert isinstance(student, Tensor) and isinstance(teacher, Tensor)
    if student.shape != teacher.shape:
        raise ValueError(f"`{teacher_name}` must have the shape of `{student_name}` {tuple(student.shape)}, got "
                         f"{tuple(teacher.shape)}")  # fmt: skip


def softmax_kl_per_sample(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """(batch,) ``KL(softmax(t / T) || softmax(s / T))`` per row, in float32 or better; the teacher is not detached.

    Computed from log-probabilities on both sides, so it is exact (and finite) for saturated teachers.
    """
    check_positive(temperature, "temperature")
    student = at_least_float32(student_logits)
    teacher = at_least_float32(teacher_logits).to(student.dtype)
    log_p_teacher = torch.log_softmax(teacher / temperature, dim=1)
    log_p_student = torch.log_softmax(student / temperature, dim=1)
    return (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1)
