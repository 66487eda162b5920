"""How metrics read their inputs: numpy arrays and torch tensors (any device, requiring grad or not) alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hf_margin._validation import check_finite

ArrayLike = Any  # a numpy array, a torch tensor on any device, or a (nested) list of numbers


def to_numpy(values: ArrayLike, name: str) -> np.ndarray:
    """`values` as a host numpy array; a tensor is detached and copied to the CPU (bfloat16, which numpy lacks, as
    float32)."""
    if isinstance(values, torch.Tensor):
        tensor = values.detach()
        return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).cpu().numpy()
    if isinstance(values, np.ndarray | list | tuple):
        return np.asarray(values)
    raise TypeError(f"`{name}` must be a numpy array, a torch tensor or a list, got {type(values).__name__}")


def real_array(values: ArrayLike, name: str) -> np.ndarray:
    """`values` as a finite float64 numpy array; TypeError unless it holds integers or floats (not bools, strings),
    ValueError naming how many entries are non-finite."""
    array = to_numpy(values, name)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {array.dtype}")
    check_finite(array, name)
    return array.astype(np.float64)


def to_tensor(values: ArrayLike) -> Any:
    """A numpy array as a tensor (sharing memory); anything else unchanged, for the caller's checks to name."""
    return torch.from_numpy(values) if isinstance(values, np.ndarray) else values
