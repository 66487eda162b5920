"""LDR-KL and ALDR-KL loss modules (Zhu, Ying, Yang, ICML 2023, arXiv 2112.14869); math in
`hf_margin.functional.ldr`."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from hf_margin._validation import check_embeddings, check_integers, check_positive_int
from hf_margin.functional.ldr import aldr_kl_loss, check_alpha, check_ldr_options, ldr_kl_loss


class LDRKLLoss(nn.Module):
    """LDR-KL: ``lambda log((1/K) sum_k exp((f_k - f_y + c 1[k != y]) / lambda))``.

    Args:
        lam: lambda (10 in the official experiments; 1 with margin 0 is cross-entropy minus log K).
        margin: c, added to every non-target logit (0.1 in the official experiments).
        logit_normalization: "softplus_l1" (the official code's rescaling, the default: with a large lambda the
            loss is nearly linear in the logits and unbounded below without it), "l1" or "none".

    Example:
        >>> loss = LDRKLLoss(lam=10.0, margin=0.1)
        >>> loss(logits, labels)
    """

    def __init__(self, lam: float = 10.0, margin: float = 0.1, logit_normalization: str = "softplus_l1") -> None:
        super().__init__()
        check_ldr_options(lam, margin, logit_normalization)
        self.lam, self.margin, self.logit_normalization = lam, margin, logit_normalization

    def forward(self, logits: Tensor, labels: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        return ldr_kl_loss(logits, labels, self.lam, self.margin, self.logit_normalization, sample_weight=sample_weight)


class ALDRKLLoss(nn.Module):
    """ALDR-KL: LDR-KL with one adaptive lambda per training example, kept in a buffer saved with checkpoints.

    Each call reads the batch's lambdas by example index, updates them from the current logits and writes them
    back (see `hf_margin.functional.ldr`). The rows therefore need a stable index column (e.g. the dataset row).
    A batch with a non-finite logit (NaN, +inf) gives a non-finite loss and leaves every stored lambda unchanged
    (the update is masked on the device, without a host sync), so one bad batch cannot poison later steps or a
    checkpoint. A class masked with -inf is not non-finite input: it keeps probability 0, as in F.cross_entropy.

    Args:
        num_examples: training-set size (the buffer's length).
        lam0: lambda_0, every example's starting and largest lambda (10 in the official experiments).
        alpha: > 1; the lambdas stay in [lam0 (1 - 1/alpha), lam0] (2 in the official experiments).
        margin: c (0.1 in the official experiments).
        logit_normalization: "l1" (the official code's default: divide by the mean absolute logit),
            "softplus_l1" (its CIFAR-100 setting) or "none".

    Example:
        >>> loss = ALDRKLLoss(num_examples=len(train_set))
        >>> loss(logits, labels, indices=batch["index"])
    """

    lambdas: Tensor
    # buffers with one entry per training example, updated at the batch's `indices` (shared across processes by
    # `ClassificationLossTrainer`)
    per_example_buffers: ClassVar[tuple[str, ...]] = ("lambdas",)

    def __init__(
        self,
        num_examples: int,
        lam0: float = 10.0,
        alpha: float = 2.0,
        margin: float = 0.1,
        logit_normalization: str = "l1",
    ) -> None:
        super().__init__()
        check_integers(num_examples=num_examples)
        check_positive_int(num_examples, "num_examples")
        check_ldr_options(lam0, margin, logit_normalization, name="lam0")
        check_alpha(alpha)
        self.lam0, self.alpha, self.margin, self.logit_normalization = lam0, alpha, margin, logit_normalization
        self.register_buffer("lambdas", torch.full((num_examples,), float(lam0)))

    def forward(self, logits: Tensor, labels: Tensor, indices: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        check_embeddings(logits, name="logits")
        if not isinstance(indices, Tensor) or indices.is_floating_point():
            raise TypeError(f"`indices` must be an integer tensor, got {getattr(indices, 'dtype', type(indices))}")
        if indices.dim() != 1 or indices.shape[0] != logits.shape[0]:
            raise ValueError(f"`indices` must have shape ({logits.shape[0]},), got {tuple(indices.shape)}")
        if int(indices.min()) < 0 or int(indices.max()) >= self.lambdas.numel():
            raise ValueError(
                f"`indices` must lie in [0, {self.lambdas.numel() - 1}] (num_examples), got values in "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        indices = indices.to(self.lambdas.device)
        loss, updated = aldr_kl_loss(
            logits,
            labels,
            self.lambdas[indices],
            self.lam0,
            self.alpha,
            self.margin,
            self.logit_normalization,
            sample_weight=sample_weight,
        )
        stored = self.lambdas[indices]
        # A NaN/+inf logit makes its row's update non-finite: then every lambda of the batch stays as it was.
        valid = torch.isfinite(updated).all()
        self.lambdas[indices] = torch.where(valid, updated.to(self.lambdas.dtype), stored)
        return loss
