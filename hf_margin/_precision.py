"""Loss arithmetic in float32 under bf16/fp16, while float64 stays float64 (gradcheck)."""

from __future__ import annotations

import torch
from torch import Tensor


def at_least_float32(tensor: Tensor) -> Tensor:
    """`tensor` as float32 when it is a lower-precision float (or an integer), else unchanged."""
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def full_precision(tensor: Tensor) -> torch.autocast:
    """A context with autocast off on `tensor`'s device: similarities and logits are computed in float32 or wider."""
    return torch.autocast(device_type=tensor.device.type, enabled=False)
