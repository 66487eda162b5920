"""CompSumLoss module: same value as the functional, tau = 1 is cross-entropy, bound, per-sample weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.comp_sum import comp_sum_loss
from hf_margin.losses.comp_sum import CompSumLoss


def test_module_matches_the_functional_and_defaults_to_cross_entropy() -> None:
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(8, 4, generator=g), torch.randint(0, 4, (8,), generator=g)
    torch.testing.assert_close(CompSumLoss()(logits, labels), F.cross_entropy(logits, labels))
    weight = torch.rand(8, generator=g)
    for tau in (0.0, 0.7, 1.5, 2.0):
        for reduction in ("mean", "sum", "none"):
            loss = CompSumLoss(tau, reduction=reduction)
            torch.testing.assert_close(loss(logits, labels), comp_sum_loss(logits, labels, tau, reduction=reduction))
            torch.testing.assert_close(
                loss(logits, labels, weight),
                comp_sum_loss(logits, labels, tau, reduction=reduction, sample_weight=weight),
            )
    assert CompSumLoss(1.5).bound == pytest.approx(2.0)
    assert CompSumLoss(1.0).bound == math.inf
    assert "tau=1.5" in repr(CompSumLoss(1.5))


def test_constructor_names_the_bad_argument() -> None:
    with pytest.raises(ValueError, match="`tau` must be a finite number >= 0"):
        CompSumLoss(-0.1)
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        CompSumLoss(reduction="batchmean")
