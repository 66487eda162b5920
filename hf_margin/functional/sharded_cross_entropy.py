"""Margin cross-entropy whose classes are split across torch.distributed processes (model-parallel softmax).

Each process holds the cosines of a batch against its own shard of class centres. The softmax normaliser of
row ``i`` needs every shard: ``loss_i = M_i + log sum_r sum_{j in shard r} exp(l_ij - M_i) - s t_i`` with
``M_i`` the all-reduced row maximum (a constant shift, no gradient) and ``s t_i`` the margin target logit, known
only on the process that owns class ``y_i``. The gradient of process r's logits is ``p_ij - [j = y_i]``, local
once the normaliser is known, so backward needs no communication.

Paper: An et al., "Partial FC: Training 10 Million Identities on a Single Machine", arXiv 2010.05222 (the
distributed softmax of its model-parallel baseline and of Partial FC).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from hf_margin._gather import distributed_world
from hf_margin._validation import check_label_vector
from hf_margin.functional.cosine_softmax import check_cosines_and_target, check_reduction, check_scale

NOT_OWNED = -1  # local label of a row whose class lives on another process


def all_reduce_(tensor: Tensor, op: dist.ReduceOp.RedOpType) -> Tensor:
    """All-reduce `tensor` in place over the default group (no-op without torch.distributed); return it."""
    if distributed_world()[1] > 1:
        dist.all_reduce(tensor, op=op)
    return tensor


class _ShardedMarginCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cosine: Tensor, target: Tensor, local_labels: Tensor, scale: float, reduction: str) -> Tensor:
        owned = local_labels != NOT_OWNED
        rows = owned.nonzero().squeeze(1)
        columns = local_labels[rows]
        logits = cosine * scale
        logits[rows, columns] = target[rows].to(logits.dtype) * scale
        # An empty shard (sampled to zero columns) contributes -inf to the max and 0 to the sum.
        row_max = logits.amax(1) if logits.shape[1] else logits.new_full((logits.shape[0],), -torch.inf)
        all_reduce_(row_max, dist.ReduceOp.MAX)
        probabilities = logits.sub_(row_max.unsqueeze(1)).exp_()
        normaliser = all_reduce_(probabilities.sum(1), dist.ReduceOp.SUM)
        probabilities.div_(normaliser.unsqueeze(1))
        target_logit = torch.where(owned, target.detach().to(logits.dtype) * scale, 0.0)
        all_reduce_(target_logit, dist.ReduceOp.SUM)
        losses = row_max + normaliser.log() - target_logit
        ctx.save_for_backward(probabilities, rows, columns)
        ctx.scale, ctx.reduction = scale, reduction
        if reduction == "mean":
            return losses.mean()
        return losses.sum() if reduction == "sum" else losses

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, None, None, None]:
        probabilities, rows, columns = ctx.saved_tensors
        batch = probabilities.shape[0]
        if ctx.reduction == "none":
            per_row = grad_output
        else:
            per_row = grad_output.expand(batch) / (batch if ctx.reduction == "mean" else 1)
        per_row = per_row * ctx.scale
        grad_cosine = probabilities * per_row.unsqueeze(1)
        grad_target = torch.zeros_like(per_row)
        grad_target[rows] = (probabilities[rows, columns] - 1.0) * per_row[rows]
        # The labelled column's logit comes from `target`, not from `cosine`.
        grad_cosine[rows, columns] = 0.0
        return grad_cosine, grad_target, None, None, None


def sharded_margin_cross_entropy(
    cosine: Tensor, target: Tensor, local_labels: Tensor, scale: float, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy over the classes of all processes, each holding the cosines of its own class shard.

    Args:
        cosine: (B, C_local) cosines of the (gathered) batch against this process's centres.
        target: (B,) margin-modified target cosines; only the rows this process owns are used.
        local_labels: (B,) column of each row's class in `cosine`, or ``NOT_OWNED`` (-1) if another process
            holds it. Every row must be owned by exactly one process.
        scale: the logit scale ``s``.
        reduction: ``"mean"`` or ``"sum"`` over the B rows, or ``"none"`` (the (B,) per-row losses).

    Every process returns the same value. Without torch.distributed this is
    ``F.cross_entropy(s * cosine with s * target at each labelled entry, local_labels)``. The label range
    check reads `local_labels` on the host (the owned rows' lookup syncs anyway).
    """
    check_cosines_and_target(cosine, target)
    check_label_vector(local_labels, cosine.shape[0], "local_labels", kind="local class columns")
    if local_labels.numel():
        low, high = int(local_labels.min()), int(local_labels.max())
        if low < NOT_OWNED or high >= cosine.shape[1]:
            raise ValueError(
                f"`local_labels` must lie in [{NOT_OWNED}, {cosine.shape[1] - 1}] (-1: another process owns the "
                f"class), got values in [{low}, {high}]"
            )
    check_scale(scale)
    check_reduction(reduction)
    return _ShardedMarginCrossEntropy.apply(cosine, target, local_labels, scale, reduction)
