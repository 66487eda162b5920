"""Row-wise log-sum-exp over a mask, safe for rows whose mask is empty (value -inf, gradient 0)."""

from __future__ import annotations

import torch
from torch import Tensor


def masked_logsumexp(values: Tensor, mask: Tensor) -> Tensor:
    """Each row's ``log sum_{mask} e^{values}``, shape (rows,); ``-inf`` with zero gradient where the mask is empty.

    ``softplus`` of it is ``log(1 + sum_{mask} e^{values})``, 0 on empty rows.

    Example:
        >>> masked_logsumexp(sim / tau, neg_mask)  # InfoNCE's log-normaliser over each anchor's negatives
    """
    has_any = mask.any(1)
    masked = values.masked_fill(~mask, float("-inf"))
    # logsumexp of a row of -inf only has a NaN gradient: such rows see zeros, and are set to -inf after.
    safe = torch.where(has_any.unsqueeze(1), masked, torch.zeros_like(masked))
    return torch.logsumexp(safe, dim=1).masked_fill(~has_any, float("-inf"))
