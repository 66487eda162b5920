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


def test_aldr_lambdas_are_unchanged_by_a_non_finite_batch() -> None:
    """#19 item 1: a NaN batch gives a NaN loss but leaves every stored lambda as it was (no poisoned state)."""
    logits, labels = batch(3)
    indices = torch.tensor([3, 7, 0, 19, 11, 5])
    clean = ALDRKLLoss(num_examples=20)
    clean(logits * 5, labels, indices)
    poisoned = ALDRKLLoss(num_examples=20)
    poisoned.load_state_dict(clean.state_dict())
    before = poisoned.lambdas.clone()
    for bad in (float("nan"), float("inf")):
        corrupt = logits.clone()
        corrupt[2, 1] = bad
        value = poisoned(corrupt, labels, indices)
        assert not torch.isfinite(value)
        torch.testing.assert_close(poisoned.lambdas, before, rtol=0, atol=0)
    # The next finite batch behaves as if the bad one never happened.
    torch.testing.assert_close(poisoned(logits, labels, indices), clean(logits, labels, indices))
    torch.testing.assert_close(poisoned.lambdas, clean.lambdas)
    assert torch.isfinite(poisoned.lambdas).all()


def test_aldr_module_masked_class_empty_batch_and_bad_logits() -> None:
    """#19 items 3 and 5: a -inf non-target class is finite; empty, integer and 1-D logits raise naming `logits`."""
    logits, labels = batch(4)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    masked = logits.clone().requires_grad_(True)
    loss = ALDRKLLoss(num_examples=6)
    value = loss(masked.masked_fill(torch.tensor([False, False, True]), float("-inf")), labels, torch.arange(6))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(masked.grad).all()
    assert torch.isfinite(loss.lambdas).all()
    with pytest.raises(ValueError, match=r"`logits`.*empty"):
        loss(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    with pytest.raises(TypeError, match="`logits`"):
        loss(torch.ones(6, 3, dtype=torch.long), labels, torch.arange(6))
    with pytest.raises(ValueError, match="`logits`"):
        loss(torch.ones(6), labels, torch.arange(6))


@pytest.mark.parametrize("bad", ["0.5", None, [0.1]])
def test_ldr_modules_reject_wrongly_typed_settings(bad: object) -> None:
    """#19 item 5: a wrongly typed hyperparameter is a TypeError naming the argument."""
    with pytest.raises(TypeError, match="`margin`"):
        LDRKLLoss(margin=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`lam0`"):
        ALDRKLLoss(10, lam0=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`alpha`"):
        ALDRKLLoss(10, alpha=bad)  # type: ignore[arg-type]
