"""Dual-Head Knowledge Distillation: the logit-level BinaryKL losses and the gradient alignment.

Yang, Zong, Huang, Feng, An, "Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an Auxiliary
Head" (arXiv 2411.08937). A logit-level loss on a student's shared linear classifier fights the cross-entropy, so
DHKD trains an auxiliary head on the same features with

- BinaryKL (each logit a Bernoulli): ``(T^2/N) sum_i sum_c KL(Bern(sigma(t_ic/T)) || Bern(sigma(s_ic/T)))``;
- BinaryKL-Norm (what DHKD uses): ``(T^2/N) sum_i sum_c KL(Bern(1/2) || Bern(sigma((s_ic - t_ic)/T)))``, which is
  ``(T^2/N) sum_i sum_c log cosh((s_ic - t_ic) / (2T))``: it depends only on s - t (shift-invariant per logit) and
  its gradient is bounded by T/2;
- optional gradient alignment (the official ``--ga``, PCGrad-like): where ``g_KD . g_CE < 0``, g_KD loses its
  component along g_CE, ``g_KD - (g_KD . g_CE)/|g_CE|^2 g_CE``; g_CE is never changed; the two are summed.

Choices: the official code clamps the Bernoulli probabilities to [1e-8, 1 - 1e-8]; here both losses are computed
exactly in log space (log-sigmoid / log-cosh), which agrees wherever |logit / T| < ~18 and stays finite with a
non-zero gradient beyond. The official alignment (``helper/optimizer.py``, ``OptimGradAlign._project_conflicting``)
flattens all parameters' gradients into one vector and projects with a single dot product: that is the default
here; `per_parameter=True` (each parameter tensor projected on its own) is an own option, not the paper's.
`softmax_kd_loss` is the standard KD baseline of the paper's comparisons (Hinton et al., ``T^2 KL`` of softmaxes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hf_margin._precision import at_least_float32
from hf_margin._reduction import reduce_losses
from hf_margin._validation import check_positive_number
from hf_margin.functional._distillation import check_student_teacher, masked_in_both, softmax_kl_per_sample


def _scaled(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    check_student_teacher(student_logits, teacher_logits, "student_logits", "teacher_logits")
    check_positive_number(temperature, "temperature")
    student = at_least_float32(student_logits)
    return student / temperature, at_least_float32(teacher_logits).to(student.dtype) / temperature


def binary_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 2.0,
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """BinaryKL ``T^2 sum_c KL(Bern(sigma(t_c/T)) || Bern(sigma(s_c/T)))`` per sample, then reduced.

    Args:
        student_logits: (batch, classes) logits of the head being trained.
        teacher_logits: (batch, classes) teacher logits (detach them unless the teacher is trained too).
        temperature: T > 0 (DHKD's CIFAR default ``--BinaryKL_T 2``).
        reduction: "mean" (over the batch, the paper's 1/N), "sum" or "none" ((batch,) per-sample values).
        sample_weight: optional (batch,) per-sample weights.

    Example:
        >>> binary_kl(student(x), teacher(x).detach(), temperature=2.0)
    """
    s, t = _scaled(student_logits, teacher_logits, temperature)
    p_teacher = torch.sigmoid(t)
    # KL(Bern(p) || Bern(q)) = p (log p - log q) + (1 - p) (log(1 - p) - log(1 - q)), all logs via log-sigmoid;
    # a term with p = 0 is 0 (0 log 0 = 0), filled before the product so that -inf - -inf never appears.
    positive = (F.logsigmoid(t) - F.logsigmoid(s)).masked_fill(p_teacher == 0, 0.0)
    per_logit = p_teacher * positive + (1 - p_teacher) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return reduce_losses(temperature**2 * per_logit.sum(dim=1), reduction, sample_weight)


def binary_kl_norm(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 2.0,
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """BinaryKL-Norm ``T^2 sum_c log cosh((s_c - t_c) / (2T))`` per sample.

    Equal to ``T^2 sum_c KL(Bern(1/2) || Bern(sigma((s_c - t_c)/T)))``.

    Args:
        student_logits: (batch, classes) logits of the auxiliary head.
        teacher_logits: (batch, classes) teacher logits.
        temperature: T > 0 (2 in DHKD's CIFAR runs).
        reduction: "mean" (over the batch), "sum" or "none".
        sample_weight: optional (batch,) per-sample weights.

    Example:
        >>> binary_kl_norm(aux_logits, teacher_logits.detach(), temperature=2.0)
    """
    s, t = _scaled(student_logits, teacher_logits, temperature)
    half = (s - t).masked_fill(masked_in_both(s, t), 0.0).abs() / 2  # a class masked in both adds log cosh 0 = 0
    # log cosh(y) = |y| + log(1 + exp(-2|y|)) - log 2: no overflow for any y.
    log_cosh = half + F.softplus(-2 * half) - math.log(2.0)
    return reduce_losses(temperature**2 * log_cosh.sum(dim=1), reduction, sample_weight)


def softmax_kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 4.0,
    reduction: str = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """Standard KD (Hinton et al., arXiv 1503.02531): ``T^2 KL(softmax(t/T) || softmax(s/T))`` per sample.

    The DHKD code's ``DistillKL`` baseline (T = 4 on CIFAR-100).

    Example:
        >>> softmax_kd_loss(student(x), teacher(x).detach(), temperature=4.0)
    """
    check_student_teacher(student_logits, teacher_logits, "student_logits", "teacher_logits")
    check_positive_number(temperature, "temperature")
    losses = temperature**2 * softmax_kl_per_sample(student_logits, teacher_logits, temperature)
    return reduce_losses(losses, reduction, sample_weight)


def _dot(first: Sequence[Tensor | None], second: Sequence[Tensor | None]) -> Tensor:
    terms = [
        (a.double() * b.double()).sum() for a, b in zip(first, second, strict=True) if a is not None and b is not None
    ]
    return torch.stack(terms).sum() if terms else torch.zeros((), dtype=torch.float64)


def _project(ce: Sequence[Tensor | None], kd: Sequence[Tensor | None]) -> tuple[list[Tensor | None], bool]:
    """(g_KD projected off g_CE if they conflict, whether they conflicted)."""
    dot = _dot(kd, ce)
    if dot >= 0:
        return list(kd), False
    coefficient = dot / _dot(ce, ce)
    projected = [
        g if g is None or c is None else g - (coefficient * c.double()).to(g.dtype) for g, c in zip(kd, ce, strict=True)
    ]
    return projected, True


def _aligned(
    ce_grads: Sequence[Tensor | None], kd_grads: Sequence[Tensor | None], per_parameter: bool
) -> tuple[list[Tensor | None], bool]:
    """`align_gradients`'s combined gradients, and whether any projection happened."""
    if len(ce_grads) != len(kd_grads):
        raise ValueError(
            f"`kd_grads` must have one entry per parameter like `ce_grads` ({len(ce_grads)}), got {len(kd_grads)}"
        )
    for index, (c, k) in enumerate(zip(ce_grads, kd_grads, strict=True)):
        if c is not None and k is not None and c.shape != k.shape:
            raise ValueError(
                f"`kd_grads[{index}]` must have the shape of `ce_grads[{index}]` {tuple(c.shape)}, got {tuple(k.shape)}"
            )
    if per_parameter:
        pairs = [_project([c], [k]) for c, k in zip(ce_grads, kd_grads, strict=True)]
        kd, conflict = [p[0][0] for p in pairs], any(p[1] for p in pairs)
    else:
        kd, conflict = _project(ce_grads, kd_grads)
    combined = [k if c is None else c if k is None else c + k for c, k in zip(ce_grads, kd, strict=True)]
    return combined, conflict


def align_gradients(
    ce_grads: Sequence[Tensor | None], kd_grads: Sequence[Tensor | None], per_parameter: bool = False
) -> list[Tensor | None]:
    """DHKD's gradient alignment: ``g_CE + g_KD``, with g_KD first projected off g_CE where they conflict.

    If ``g_KD . g_CE < 0`` then ``g_KD <- g_KD - (g_KD . g_CE) / |g_CE|^2 g_CE`` (now orthogonal to g_CE); g_CE is
    never altered. A None entry is a parameter that loss does not reach (counted as zero).

    Args:
        ce_grads: one gradient (or None) per parameter, of the cross-entropy (main head) loss.
        kd_grads: the same parameters' gradients of the distillation (auxiliary head) loss.
        per_parameter: project each parameter's gradient on its own instead of the whole flattened vector.

    Returns:
        The combined gradient per parameter (None where both are None).

    Example:
        >>> combined = align_gradients(torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True),
        ...                            torch.autograd.grad(kd, params, allow_unused=True))
    """
    return _aligned(ce_grads, kd_grads, per_parameter)[0]


def aligned_backward(
    ce_loss: Tensor, kd_loss: Tensor, parameters: Iterable[nn.Parameter], per_parameter: bool = False
) -> bool:
    """Backward of ``ce_loss + kd_loss`` with DHKD's gradient alignment, accumulated into each ``.grad``.

    Use in place of ``(ce_loss + kd_loss).backward()``. Returns whether g_KD was projected: the two whole
    gradients conflicted or, with `per_parameter`, the two gradients of at least one parameter did.

    Example:
        >>> ce, kd = DualHeadKDLoss().terms(main_logits, aux_logits, teacher_logits, labels)
        >>> aligned_backward(ce, kd, model.parameters()); optimizer.step()
    """
    params = [p for p in parameters if p.requires_grad]
    ce_grads = torch.autograd.grad(ce_loss, params, retain_graph=True, allow_unused=True)
    kd_grads = torch.autograd.grad(kd_loss, params, allow_unused=True)
    combined, conflict = _aligned(ce_grads, kd_grads, per_parameter)
    for param, grad in zip(params, combined, strict=True):
        if grad is not None:
            param.grad = grad.detach() if param.grad is None else param.grad + grad.detach()
    return conflict
