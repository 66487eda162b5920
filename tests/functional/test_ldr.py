"""LDR-KL and ALDR-KL (the math of LDRKLLoss / ALDRKLLoss): closed form = the dual maximum, the CE / hinge / mean
limits, the lambda range, ALDR with alpha -> infinity = LDR-KL, gradcheck, extremes, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.ldr import aldr_kl_loss, aldr_kl_temperatures, ldr_kl_loss, normalize_logits


def batch(seed: int = 0, rows: int = 6, classes: int = 5, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, classes, generator=g, dtype=dtype) * 3, torch.randint(classes, (rows,), generator=g)


def test_lambda_one_without_margin_is_cross_entropy_minus_log_k() -> None:
    logits, labels = batch()
    expected = F.cross_entropy(logits, labels, reduction="none") - math.log(5)
    torch.testing.assert_close(ldr_kl_loss(logits, labels, lam=1.0, margin=0.0, reduction="none"), expected)


def test_closed_form_is_the_maximum_over_label_distributions() -> None:
    logits, labels = batch(1, rows=1)
    lam, margin = 0.7, 0.3
    value = ldr_kl_loss(logits, labels, lam=lam, margin=margin)
    delta = logits[0] - logits[0, labels[0]] + margin * (torch.arange(5) != labels[0])

    def objective(p: torch.Tensor) -> torch.Tensor:
        return (p * delta).sum() - lam * (p * torch.log(5 * p)).sum()

    optimum = torch.softmax(delta / lam, dim=0)
    torch.testing.assert_close(objective(optimum), value)
    g = torch.Generator().manual_seed(2)
    for _ in range(20):  # any other distribution does worse
        other = torch.softmax(torch.randn(5, generator=g, dtype=torch.float64), dim=0)
        assert objective(other) <= value + 1e-12


def test_limits_hinge_and_mean() -> None:
    logits, labels = batch(3)
    deltas = logits - logits.gather(1, labels[:, None]) + 0.1 * (torch.arange(5) != labels[:, None])
    hinge = ldr_kl_loss(logits, labels, lam=1e-4, reduction="none")
    torch.testing.assert_close(hinge, deltas.max(dim=1).values, atol=1e-3, rtol=0)
    mean = ldr_kl_loss(logits, labels, lam=1e6, reduction="none")
    torch.testing.assert_close(mean, deltas.mean(dim=1), atol=1e-4, rtol=0)


def test_shift_invariance_and_monotone_in_margin() -> None:
    logits, labels = batch(4)
    torch.testing.assert_close(ldr_kl_loss(logits + 7.0, labels), ldr_kl_loss(logits, labels))
    values = [float(ldr_kl_loss(logits, labels, margin=c)) for c in (0.0, 0.1, 0.5, 1.0)]
    assert values == sorted(values) and values[0] < values[-1]


def test_logit_normalization_is_the_official_rescaling() -> None:
    logits, _ = batch(5)
    softplus = F.softplus(logits)
    torch.testing.assert_close(normalize_logits(logits, "softplus_l1"), softplus / softplus.mean(1, keepdim=True))
    torch.testing.assert_close(normalize_logits(logits, "l1").abs().mean(1), torch.ones(6, dtype=torch.float64))


def test_aldr_lambdas_stay_in_their_range_and_shrink_for_confident_rows() -> None:
    logits, _ = batch(6, rows=64)
    logits[0] = torch.tensor([600.0, 0, 0, 0, 0], dtype=torch.float64)  # confident
    logits[1] = 0.0  # uniform
    lambdas = torch.full((64,), 10.0, dtype=torch.float64)
    updated = aldr_kl_temperatures(logits, lambdas, lam0=10.0, alpha=2.0)
    assert (updated >= 10.0 * (1 - 1 / 2) - 1e-9).all() and (updated <= 10.0 + 1e-9).all()
    assert updated[0] < 5.01 and updated[1] == pytest.approx(10.0)
    assert not updated.requires_grad


def test_aldr_with_huge_alpha_is_ldr_kl_and_returns_the_updated_lambdas() -> None:
    logits, labels = batch(7)
    lambdas = torch.full((6,), 10.0, dtype=torch.float64)
    loss, updated = aldr_kl_loss(logits, labels, lambdas, lam0=10.0, alpha=1e12)
    torch.testing.assert_close(loss, ldr_kl_loss(logits, labels, lam=10.0))
    loss, updated = aldr_kl_loss(logits, labels, lambdas, lam0=10.0, alpha=2.0, reduction="none")
    deltas = logits - logits.gather(1, labels[:, None]) + 0.1 * (torch.arange(5) != labels[:, None])
    ldr = updated * (torch.logsumexp(deltas / updated[:, None], dim=1) - math.log(5))
    torch.testing.assert_close(loss, ldr - 2 * math.log(5) / 20 * (updated - 10) ** 2)
    assert (updated < 10).all()


def test_gradcheck_and_extremes() -> None:
    logits, labels = batch(8, rows=3, classes=4)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: ldr_kl_loss(x, labels, lam=0.5), (logits,))
    lambdas = torch.full((3,), 10.0, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: aldr_kl_loss(x, labels, lambdas)[0], (logits,))
    huge = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], requires_grad=True)
    for method in ("none", "l1", "softplus_l1"):
        loss = ldr_kl_loss(huge, torch.tensor([1, 0]), lam=0.01, logit_normalization=method)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(huge.grad).all()
        aldr, lam = aldr_kl_loss(huge, torch.tensor([1, 0]), torch.full((2,), 10.0), logit_normalization=method)
        assert torch.isfinite(aldr) and torch.isfinite(lam).all()
    half = ldr_kl_loss(torch.randn(4, 3, dtype=torch.bfloat16), torch.tensor([0, 1, 2, 0]))
    assert half.dtype == torch.float32 and torch.isfinite(half)


def test_errors_name_the_argument() -> None:
    logits, labels = batch()
    with pytest.raises(ValueError, match="`lam`"):
        ldr_kl_loss(logits, labels, lam=0.0)
    with pytest.raises(ValueError, match="`margin`"):
        ldr_kl_loss(logits, labels, margin=-1.0)
    with pytest.raises(ValueError, match="`labels`"):
        ldr_kl_loss(logits, labels + 5)
    with pytest.raises(ValueError, match="`logit_normalization`"):
        ldr_kl_loss(logits, labels, logit_normalization="l2")
    with pytest.raises(ValueError, match="`alpha`"):
        aldr_kl_loss(logits, labels, torch.ones(6), alpha=1.0)
    with pytest.raises(ValueError, match="`lambdas`"):
        aldr_kl_loss(logits, labels, torch.ones(5))
    with pytest.raises(ValueError, match="`sample_weight`"):
        ldr_kl_loss(logits, labels, sample_weight=torch.ones(3))


def test_modules_reject_bad_settings_when_built() -> None:
    from hf_margin.losses import ALDRKLLoss, LDRKLLoss

    with pytest.raises(ValueError, match="`lam`"):
        LDRKLLoss(lam=-1.0)
    with pytest.raises(ValueError, match="`margin`"):
        LDRKLLoss(margin=-5.0)
    with pytest.raises(ValueError, match="`logit_normalization`"):
        LDRKLLoss(logit_normalization="bogus")
    with pytest.raises(ValueError, match="`lam0`"):
        ALDRKLLoss(10, lam0=-1.0)
    with pytest.raises(ValueError, match="`alpha`"):
        ALDRKLLoss(10, alpha=0.5)


@pytest.mark.parametrize("method", ["none", "l1", "softplus_l1"])
def test_masked_non_target_class_is_finite(method: str) -> None:
    """#19 item 3: a class masked with -inf is left out (probability 0), as F.cross_entropy allows."""
    logits, labels = batch(9, rows=4, classes=4)
    labels = torch.tensor([0, 1, 2, 0])
    mask = torch.tensor([False, False, False, True])
    x = logits.clone().requires_grad_(True)
    value = ldr_kl_loss(x.masked_fill(mask, float("-inf")), labels, lam=1.0, margin=0.0, logit_normalization=method)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all() and (x.grad[:, 3] == 0).all()
    lambdas = torch.full((4,), 10.0, dtype=torch.float64)
    aldr, updated = aldr_kl_loss(x.masked_fill(mask, float("-inf")), labels, lambdas, logit_normalization=method)
    assert torch.isfinite(aldr) and torch.isfinite(updated).all()
    if method == "none":  # lambda = 1, c = 0 is CE minus log K, with the masked class at probability 0
        expected = F.cross_entropy(logits.masked_fill(mask, float("-inf")), labels) - math.log(4)
        torch.testing.assert_close(value, expected)


@pytest.mark.parametrize("method", ["l1", "softplus_l1"])
def test_bf16_logits_are_normalised_in_float32(method: str) -> None:
    """#19 item 10: bf16 logits are upcast before the normalisation, so the value matches float64 on the same
    (bf16-representable) numbers to float32 precision."""
    logits, labels = batch(10, rows=64, classes=10)
    half = logits.to(torch.bfloat16)
    reference = ldr_kl_loss(half.double(), labels, lam=1.0, logit_normalization=method, reduction="none")
    value = ldr_kl_loss(half, labels, lam=1.0, logit_normalization=method, reduction="none")
    torch.testing.assert_close(value.double(), reference, rtol=1e-5, atol=1e-6)
    lambdas = torch.full((64,), 10.0)
    aldr_ref, lam_ref = aldr_kl_loss(half.double(), labels, lambdas.double(), logit_normalization=method)
    aldr, lam = aldr_kl_loss(half, labels, lambdas, logit_normalization=method)
    torch.testing.assert_close(aldr.double(), aldr_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lam.double(), lam_ref, rtol=1e-5, atol=1e-6)


def test_functional_checks_match_the_modules() -> None:
    """#19 items 2 and 5: the functions check what the modules check; empty, integer and 1-D logits are named."""
    logits, labels = batch()
    lambdas = torch.full((6,), 10.0, dtype=torch.float64)
    ldr = lambda **kw: ldr_kl_loss(logits, labels, **kw)  # noqa: E731
    aldr = lambda **kw: aldr_kl_loss(logits, labels, lambdas, **kw)  # noqa: E731
    for fn in (ldr, aldr):
        with pytest.raises(ValueError, match="`reduction`"):
            fn(reduction="avg")
        with pytest.raises(ValueError, match="`margin`"):
            fn(margin=float("nan"))
        with pytest.raises(TypeError, match="`margin`"):
            fn(margin="0.1")
        with pytest.raises(ValueError, match="`logit_normalization`"):
            fn(logit_normalization="l2")
    with pytest.raises(ValueError, match="`lam`"):
        ldr_kl_loss(logits, labels, lam=float("nan"))
    with pytest.raises(ValueError, match="`lam0`"):
        aldr_kl_loss(logits, labels, lambdas, lam0=float("nan"))
    with pytest.raises(ValueError, match="`alpha`"):
        aldr_kl_loss(logits, labels, lambdas, alpha=float("nan"))
    empty, no_labels = torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)
    for fn2 in (lambda x, y: ldr_kl_loss(x, y), lambda x, y: aldr_kl_loss(x, y, torch.ones(x.shape[0]))):
        with pytest.raises(ValueError, match=r"`logits`.*empty"):
            fn2(empty, no_labels)
        with pytest.raises(TypeError, match="`logits`"):
            fn2(logits.long(), labels)
        with pytest.raises(ValueError, match="`logits`"):
            fn2(logits[:, 0], labels)
