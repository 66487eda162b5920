"""Focal loss, FocalLoss's math (gamma = 0 is cross-entropy, with or without class weights; the modulating
factor), and DatasetEquity's generalized focal weight that add_equity_weights writes (range, limits, monotone)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.focal import focal_loss, generalized_focal_weight
from hf_margin.functional.ldam import effective_number_weights


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 4, generator=g, dtype=torch.float64) * 2, torch.randint(4, (8,), generator=g)


def test_gamma_zero_is_cross_entropy_also_class_weighted() -> None:
    logits, labels = batch()
    torch.testing.assert_close(focal_loss(logits, labels, gamma=0.0), F.cross_entropy(logits, labels))
    weight = effective_number_weights([500, 50, 5, 1], beta=0.999).double()
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(
            focal_loss(logits, labels, 0.0, weight, reduction),
            F.cross_entropy(logits, labels, weight=weight, reduction=reduction),
        )


def test_modulating_factor_and_sample_weights() -> None:
    logits, labels = batch(1)
    p = torch.softmax(logits, 1).gather(1, labels[:, None]).squeeze(1)
    ce = F.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(focal_loss(logits, labels, gamma=2.0, reduction="none"), (1 - p) ** 2 * ce)
    w = torch.linspace(0.5, 1.0, 8, dtype=torch.float64)
    torch.testing.assert_close(focal_loss(logits, labels, 2.0, sample_weight=w), ((1 - p) ** 2 * ce * w).mean())
    assert focal_loss(logits, labels, 2.0) < focal_loss(logits, labels, 0.0)


def test_gradcheck_and_extremes() -> None:
    logits, labels = batch(2)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: focal_loss(x, labels, gamma=1.5), (logits,))
    huge = torch.tensor([[1e4, -1e4], [-1e4, 1e4]], requires_grad=True)
    loss = focal_loss(huge, torch.tensor([1, 1]), gamma=2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(huge.grad).all()
    assert focal_loss(huge, torch.tensor([0, 1]), gamma=2.0) == 0


def test_generalized_focal_weight() -> None:
    p = torch.linspace(0, 1, 11)
    w = generalized_focal_weight(p, eta=1.0, gamma=5.0)
    assert w[0] == 1.0 and w[-1] == pytest.approx(0.5) and (w.diff() <= 0).all()
    assert (generalized_focal_weight(p, eta=0.5, gamma=0.0) == 1).all(), "gamma = 0 is unweighted (0^0 = 1)"
    torch.testing.assert_close(generalized_focal_weight(p, eta=1e9), torch.ones(11))
    torch.testing.assert_close(w, (1 + (1 - p) ** 5) / 2)


def test_errors_name_the_argument() -> None:
    logits, labels = batch()
    with pytest.raises(ValueError, match="`gamma`"):
        focal_loss(logits, labels, gamma=-1.0)
    with pytest.raises(ValueError, match="`weight`"):
        focal_loss(logits, labels, weight=torch.ones(3))
    with pytest.raises(ValueError, match="`labels`"):
        focal_loss(logits, labels + 4)
    with pytest.raises(ValueError, match="`reduction`"):
        focal_loss(logits, labels, reduction="avg")
    with pytest.raises(ValueError, match="`likelihood`"):
        generalized_focal_weight(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="`eta`"):
        generalized_focal_weight(torch.tensor([0.5]), eta=-1.0)
