"""Margin Preserving Training (MPT): the margin-calibrated cross-entropy and the focal distillation losses.

Ricci, Biondi, Pernici, Del Bimbo, "Mitigating Negative Flips via Margin Preserving Training" (arXiv 2511.08322,
AAAI 2026). When a classifier grows from C_old to C classes, MPT trains the new model with

- ``L_bias = CE(z + b 1_new, y)``: a positive bias b on the new classes' logits *in the training loss only*, so
  that the raw (inference) logits keep larger margins for the old classes (b = 0 is plain CE);
- focal distillation ``FD_KL(z_S, z_T, y) = (1/B) sum_i (alpha_fd + beta_fd 1[argmax z_T,i = y_i])
  KL(softmax(z_T,i/tau) || softmax(z_S,i/tau))`` (no tau^2 factor; the weight follows whether the *teacher* is
  right), from the old model on the old-class logits and from an independently trained new model on all logits.

The formulas are those of the official code (``miccunifi/negative_flip_MPT``, `loss.py`), defaults b = 4,
alpha_fd = 1, beta_fd = 5, tau = 5. The README calls its "LM" variant a "logit-margin calibration variant", but in
the code it is an L2 logit-matching focal distillation (PCT-style), ``0.4 (1/B) sum_i w_i 1/2 mean_c
(z_S,ic - z_T,ic)^2``: that is `focal_distillation_l2` here (the 0.4 is its `scale`). The paper's own equations
were not available; nothing beyond the code's formulas is implemented.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import reduce_losses
from hf_margin._validation import check_class_labels, check_embeddings, check_label_vector, check_number_in_range
from hf_margin.functional._distillation import check_student_teacher, masked_in_both, softmax_kl_per_sample


def _class_ids(new_class_ids: Sequence[int] | Tensor, num_classes: int) -> Tensor:
    ids = torch.as_tensor(new_class_ids, dtype=torch.long).flatten()
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_classes):
        raise ValueError(
            f"`new_class_ids` must lie in [0, {num_classes - 1}], got values in [{int(ids.min())}, {int(ids.max())}]"
        )
    return ids


def logit_bias_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    new_class_ids: Sequence[int] | Tensor,
    bias: float = 4.0,
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """MPT's margin-calibrated loss ``CE(z + b 1_new, y)``: bias b added to the new classes' logits.

    Args:
        logits: (batch, C) raw logits of the new model (inference uses them unbiased).
        labels: (batch,) class indices.
        new_class_ids: the classes added by the update (C_old .. C - 1 in the paper).
        bias: b >= 0 (4 in the official runs; README grid {0, 1, 2, 4}); 0 is plain cross-entropy.
        reduction: "mean", "sum" or "none".
        sample_weight: optional (batch,) per-sample weights.

    Example:
        >>> logit_bias_cross_entropy(logits, labels, new_class_ids=range(50, 100), bias=4.0)
    """
    check_embeddings(logits, name="logits")
    check_class_labels(labels, logits.shape[0], logits.shape[1])
    check_number_in_range(bias, "bias", 0.0, float("inf"))
    offset = torch.zeros(logits.shape[1], dtype=torch.float64)
    offset[_class_ids(new_class_ids, logits.shape[1])] = bias
    biased = at_least_float32(logits)
    biased = biased + offset.to(biased)
    return reduce_losses(F.cross_entropy(biased, labels, reduction="none"), reduction, sample_weight)


def focal_weights(teacher_logits: Tensor, labels: Tensor, alpha_fd: float = 1.0, beta_fd: float = 5.0) -> Tensor:
    """(batch,) ``alpha_fd + beta_fd 1[argmax teacher = y]``; a label outside the teacher's classes gets alpha_fd."""
    check_embeddings(teacher_logits, name="teacher_logits")
    check_label_vector(labels, teacher_logits.shape[0])
    check_number_in_range(alpha_fd, "alpha_fd", 0.0, float("inf"))
    check_number_in_range(beta_fd, "beta_fd", 0.0, float("inf"))
    correct = teacher_logits.argmax(dim=1) == labels.to(teacher_logits.device)
    return alpha_fd + beta_fd * correct.to(at_least_float32(teacher_logits).dtype)


def _detached_teacher_and_weights(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, alpha_fd: float, beta_fd: float
) -> tuple[Tensor, Tensor]:
    """The focal-distillation prologue: check the logits, detach the teacher, its per-sample focal weights."""
    check_student_teacher(student_logits, teacher_logits, "student_logits", "teacher_logits")
    teacher = teacher_logits.detach()
    return teacher, focal_weights(teacher, labels, alpha_fd, beta_fd)


def focal_distillation_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    alpha_fd: float = 1.0,
    beta_fd: float = 5.0,
    temperature: float = 5.0,
    reduction: str = "mean",
) -> Tensor:
    """Focal distillation ``(alpha_fd + beta_fd 1[teacher right]) KL(softmax(t/tau) || softmax(s/tau))`` per sample.

    Args:
        student_logits: (batch, K) student logits (for the old model: the student's old-class columns).
        teacher_logits: (batch, K) teacher logits (no gradient flows to them).
        labels: (batch,) class indices; a label >= K (a new class, for the old teacher) means "teacher wrong".
        alpha_fd: weight of every sample (1).
        beta_fd: extra weight where the teacher predicts the label (5).
        temperature: tau (the official calls pass 5; the function's own default there is 100).
        reduction: "mean" (the code's 1/B), "sum" or "none".

    Example:
        >>> old_term = focal_distillation_kl(logits[:, :50], old_logits, labels)
        >>> new_term = focal_distillation_kl(logits, new_logits, labels)
    """
    teacher, weights = _detached_teacher_and_weights(student_logits, teacher_logits, labels, alpha_fd, beta_fd)
    return reduce_losses(weights * softmax_kl_per_sample(student_logits, teacher, temperature), reduction)


def focal_distillation_l2(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    alpha_fd: float = 1.0,
    beta_fd: float = 5.0,
    scale: float = 0.4,
    reduction: str = "mean",
) -> Tensor:
    """MPT's "LM" variant: ``scale (alpha_fd + beta_fd 1[teacher right]) 1/2 mean_c (s_c - t_c)^2`` per sample.

    Args:
        student_logits: (batch, K) student logits.
        teacher_logits: (batch, K) teacher logits (no gradient flows to them).
        labels: (batch,) class indices (a label >= K means "teacher wrong").
        alpha_fd: weight of every sample (1).
        beta_fd: extra weight where the teacher predicts the label (5).
        scale: the code's constant factor 0.4.
        reduction: "mean", "sum" or "none".

    Example:
        >>> focal_distillation_l2(logits, new_logits, labels)
    """
    teacher, weights = _detached_teacher_and_weights(student_logits, teacher_logits, labels, alpha_fd, beta_fd)
    check_number_in_range(scale, "scale", 0.0, float("inf"))
    student = at_least_float32(student_logits)
    teacher = teacher.to(student.dtype)
    # A class masked with -inf in both counts as a zero difference (not -inf - -inf).
    squared = 0.5 * (student - teacher).masked_fill(masked_in_both(student, teacher), 0.0).square().mean(dim=1)
    return reduce_losses(scale * weights.to(student.dtype) * squared, reduction)
