"""All-gather of batch rows across torch.distributed processes, with gradient, for losses that need the whole batch.

Batches may differ in size between processes (the last batch of an epoch): rows are padded to the largest size,
gathered, and trimmed. The backward pass sums each process's gradient for the gathered rows (an all-reduce) and
keeps this process's slice, so every process gets the gradient of its own rows from all processes' losses.
Works with any backend (gloo, nccl): only all_gather and all_reduce are used.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the default process group, or (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gathered_sizes(rows: int, device: torch.device) -> list[int]:
    """Every process's row count, in rank order."""
    _, world = distributed_world()
    local = torch.tensor([rows], device=device, dtype=torch.long)
    sizes = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(sizes, local)
    return [int(size) for size in sizes]


def _gather_padded(tensor: Tensor, sizes: list[int]) -> Tensor:
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


class _AllGatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, sizes: list[int]) -> Tensor:
        ctx.sizes = sizes
        ctx.rank = distributed_world()[0]
        return _gather_padded(tensor, sizes)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, factor: float) -> Tensor:
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.factor, None


def scale_gradient(tensor: Tensor, factor: float) -> Tensor:
    """`tensor` unchanged, with its gradient multiplied by `factor` on the way back."""
    return _ScaleGradient.apply(tensor, factor)


def gather_rows(tensor: Tensor, sizes: list[int]) -> Tensor:
    """Concatenate every process's `tensor` (rows in rank order); differentiable for floating tensors.

    Args:
        tensor: (rows, ...) this process's rows.
        sizes: every process's row count, from `gathered_sizes`.
    """
    if tensor.is_floating_point():
        return _AllGatherRows.apply(tensor, sizes)
    return _gather_padded(tensor, sizes)


def all_reduce_sum(value: Tensor) -> Tensor:
    """`value` summed over processes (no gradient); unchanged without torch.distributed."""
    if distributed_world()[1] == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total
