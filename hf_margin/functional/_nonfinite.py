"""NaN out a batch-level value computed from non-finite input, without a host sync (the non-finite policy)."""

from __future__ import annotations

import torch
from torch import Tensor


def propagate_non_finite(value: Tensor, *inputs: Tensor) -> Tensor:
    """`value` unchanged, or NaN if any of `inputs` holds a NaN or an infinity.

    For losses whose saturating maths (sigmoid, ranks, nearest neighbours) would turn a non-finite input into a
    plausible finite number. Decided on the device (no sync); finite inputs keep their value and gradients.
    """
    finite = torch.stack([torch.isfinite(x.detach()).all() for x in inputs]).all()
    return torch.where(finite, value, torch.full_like(value, float("nan")))


def nan_where_infinite(values: Tensor, result: Tensor) -> Tensor:
    """`result` (computed elementwise from `values`, same shape) with NaN wherever `values` is infinite.

    For saturating elementwise maps (clamp, sigmoid) that would turn an infinity into a plausible bound.
    """
    return torch.where(torch.isinf(values), torch.nan, result)
