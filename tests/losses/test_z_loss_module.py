"""ZLoss (a and b required) and LogitZLoss (PaLM's log-partition penalty): same values as the functionals."""

from __future__ import annotations

import pytest
import torch

from hf_margin.functional.z_loss import logit_z_loss, z_loss
from hf_margin.losses.z_loss import LogitZLoss, ZLoss


def test_z_loss_module_matches_the_functional_and_needs_a_and_b() -> None:
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(8, 4, generator=g), torch.randint(0, 4, (8,), generator=g)
    for reduction in ("mean", "sum", "none"):
        loss = ZLoss(a=2.0, b=1.0, reduction=reduction)
        torch.testing.assert_close(loss(logits, labels), z_loss(logits, labels, 2.0, 1.0, reduction=reduction))
    torch.testing.assert_close(ZLoss(2.0, 1.0)(3 * logits + 5, labels), ZLoss(2.0, 1.0)(logits, labels))
    with pytest.raises(TypeError):
        ZLoss()  # type: ignore[call-arg]  # no paper-attributed default: the paper tunes a and b per task
    with pytest.raises(ValueError, match="`a` must be a finite number > 0"):
        ZLoss(a=0.0, b=1.0)
    with pytest.raises(ValueError, match="`b` must be a finite real number"):
        ZLoss(a=1.0, b=float("inf"))
    assert "a=2.0, b=1.0" in repr(ZLoss(2.0, 1.0))


def test_logit_z_loss_module() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 7, generator=g)
    penalty = LogitZLoss()
    assert penalty.coefficient == 1e-4
    torch.testing.assert_close(penalty(logits), 1e-4 * torch.logsumexp(logits, -1).square().mean())
    torch.testing.assert_close(LogitZLoss(1e-3, "none")(logits), logit_z_loss(logits, 1e-3, "none"))
    with pytest.raises(ValueError, match="`coefficient` must lie in"):
        LogitZLoss(-1.0)
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        LogitZLoss(reduction="avg")
