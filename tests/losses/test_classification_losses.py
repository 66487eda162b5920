"""Loss modules FocalLoss, LDRKLLoss and ALDRKLLoss: they call their functionals, class-balanced weights,
ALDR-KL's per-example lambdas (stored by index, saved in the state dict), errors."""

from __future__ import annotations

import pytest
import torch

from hf_margin.functional.focal import focal_loss
from hf_margin.functional.ldam import effective_number_weights
from hf_margin.functional.ldr import aldr_kl_temperatures, ldr_kl_loss
from hf_margin.losses import ALDRKLLoss, FocalLoss, LDRKLLoss


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 3, generator=g), torch.randint(3, (6,), generator=g)


def test_focal_module_class_balanced() -> None:
    logits, labels = batch()
    module = FocalLoss(gamma=1.0, class_counts=[100, 10, 1], beta=0.99)
    weight = effective_number_weights([100, 10, 1], 0.99)
    torch.testing.assert_close(module(logits, labels), focal_loss(logits, labels, 1.0, weight))
    assert "weight" in module.state_dict()
    torch.testing.assert_close(FocalLoss(2.0)(logits, labels), focal_loss(logits, labels, 2.0))
    with pytest.raises(ValueError, match="`class_counts` and `beta`"):
        FocalLoss(class_counts=[1, 2])


def test_ldr_module() -> None:
    logits, labels = batch(1)
    module = LDRKLLoss(lam=2.0, margin=0.2)
    torch.testing.assert_close(module(logits, labels), ldr_kl_loss(logits, labels, 2.0, 0.2, "softplus_l1"))
    plain = LDRKLLoss(lam=2.0, margin=0.2, logit_normalization="none")
    torch.testing.assert_close(plain(logits, labels), ldr_kl_loss(logits, labels, 2.0, 0.2))


def test_aldr_module_keeps_one_lambda_per_example() -> None:
    logits, labels = batch(2)
    loss = ALDRKLLoss(num_examples=20, lam0=10.0, alpha=2.0, logit_normalization="none")
    indices = torch.tensor([3, 7, 0, 19, 11, 5])
    value = loss(logits * 20, labels, indices)
    expected = aldr_kl_temperatures(logits * 20, torch.full((6,), 10.0), 10.0, 2.0)
    torch.testing.assert_close(loss.lambdas[indices], expected)
    untouched = torch.ones(20, dtype=torch.bool)
    untouched[indices] = False
    assert (loss.lambdas[untouched] == 10.0).all() and (loss.lambdas[indices] < 10.0).all()
    assert torch.isfinite(value)
    restored = ALDRKLLoss(num_examples=20)
    restored.load_state_dict(loss.state_dict())
    torch.testing.assert_close(restored.lambdas, loss.lambdas)
    with pytest.raises(ValueError, match="`indices`"):
        loss(logits, labels, torch.tensor([0, 1, 2, 3, 4, 20]))
    with pytest.raises(ValueError, match="`indices`"):
        loss(logits, labels, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="`num_examples`"):
        ALDRKLLoss(num_examples=0)
