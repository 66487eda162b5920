"""Per-sample losses to the reported value: "none", "sum" or "mean", with optional per-sample weights."""

from __future__ import annotations

import torch
from torch import Tensor

from hf_margin._validation import check_choice

REDUCTIONS = ("mean", "sum", "none")


def reduce_losses(losses: Tensor, reduction: str = "mean", sample_weight: Tensor | None = None) -> Tensor:
    """Weight each sample's loss by `sample_weight` (batch,), if given, then reduce.

    "mean" divides by the batch size (not by the weights' sum), so a batch split in two and averaged gives the
    same value and gradient as the whole batch, and gradient accumulation matches a bigger batch.
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    if sample_weight is not None:
        if sample_weight.shape != losses.shape:
            raise ValueError(
                f"`sample_weight` must have shape {tuple(losses.shape)} (one weight per sample), got "
                f"{tuple(sample_weight.shape)}"
            )
        if not torch.isfinite(sample_weight).all() or (sample_weight < 0).any():
            raise ValueError("`sample_weight` must be finite and >= 0 (one weight per sample)")
        losses = losses * sample_weight.to(losses.dtype)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()
