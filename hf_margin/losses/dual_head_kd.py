"""Dual-Head KD loss module (Yang et al., arXiv 2411.08937); math in `hf_margin.functional.dual_head_kd`."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_class_labels, check_embeddings, check_number_in_range, check_positive_number
from hf_margin.functional.dual_head_kd import binary_kl, binary_kl_norm


class DualHeadKDLoss(nn.Module):
    """DHKD's objective ``gamma CE(main, y) + alpha BinaryKL-Norm(aux, teacher)`` for a two-headed student.

    Dual-Head Knowledge Distillation (arXiv 2411.08937): the main head (used at inference) learns from the
    labels only, an auxiliary head on the same features matches the teacher's logits. In the official
    ``--distill dhkd`` mode there is no softmax-KD term, and so none here.

    Args:
        gamma: weight of the main head's cross-entropy (``-r``, 1 in the paper's runs).
        alpha: weight of the auxiliary head's logit loss (``-a``: 1 on CIFAR-100, 0.1 on ImageNet).
        temperature: BinaryKL temperature T (``--BinaryKL_T``, 2).
        normalized: BinaryKL-Norm (the method; default) or plain BinaryKL (the paper's ablation).

    Example:
        >>> model = DualHeadModel(student)  # training mode returns logits and aux_logits
        >>> out = model(pixel_values=x)
        >>> DualHeadKDLoss(alpha=1.0)(out.logits, out.aux_logits, teacher(x).logits.detach(), y)
    """

    def __init__(self, gamma: float = 1.0, alpha: float = 1.0, temperature: float = 2.0, normalized: bool = True):
        super().__init__()
        check_number_in_range(gamma, "gamma", 0.0, float("inf"))
        check_number_in_range(alpha, "alpha", 0.0, float("inf"))
        check_positive_number(temperature, "temperature")
        self.gamma, self.alpha, self.temperature, self.normalized = gamma, alpha, temperature, normalized

    def terms(
        self, logits: Tensor, aux_logits: Tensor, teacher_logits: Tensor, labels: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The weighted (CE, KD) terms, separately (for gradient alignment or logging)."""
        check_embeddings(logits, name="logits")
        check_class_labels(labels, logits.shape[0], logits.shape[1])
        if aux_logits is None:
            raise TypeError(
                "`aux_logits` is None: a DualHeadModel returns them in training mode only; call "
                "model.train(), or wrap with DualHeadModel(..., aux_in_eval=True) to evaluate the "
                "auxiliary head"
            )
        check_embeddings(aux_logits, name="aux_logits")
        if aux_logits.shape != logits.shape:
            raise ValueError(
                f"`aux_logits` must have the shape of `logits` {tuple(logits.shape)}, got {tuple(aux_logits.shape)}"
            )
        kd = binary_kl_norm if self.normalized else binary_kl
        ce = F.cross_entropy(at_least_float32(logits), labels)
        return self.gamma * ce, self.alpha * kd(aux_logits, teacher_logits, self.temperature)

    def forward(self, logits: Tensor, aux_logits: Tensor, teacher_logits: Tensor, labels: Tensor) -> Tensor:
        ce, kd = self.terms(logits, aux_logits, teacher_logits, labels)
        return ce + kd
