"""The sharded cross-entropy's argument checks (its values and gradients are tested with PartialFCHead in
tests/heads/test_partial_fc.py)."""

from __future__ import annotations

import math

import pytest
import torch

from hf_margin.functional.sharded_cross_entropy import sharded_margin_cross_entropy


def test_bad_reduction_and_scale_name_the_argument() -> None:
    """#19 item 2: the function checks what the head checks: `reduction` and `scale`."""
    cosine, target, labels = torch.rand(3, 4), torch.rand(3), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="`reduction`"):
        sharded_margin_cross_entropy(cosine, target, labels, 8.0, reduction="avg")
    with pytest.raises(ValueError, match="`scale`"):
        sharded_margin_cross_entropy(cosine, target, labels, math.nan)
    with pytest.raises(TypeError, match="`scale`"):
        sharded_margin_cross_entropy(cosine, target, labels, "8")  # type: ignore[arg-type]
