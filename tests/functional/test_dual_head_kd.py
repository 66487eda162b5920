"""Dual-Head KD's functionals: BinaryKL and BinaryKL-Norm against the Bernoulli-KL definition (written with
torch's BCE) and the log-cosh form, shift invariance, bounds, gradcheck, extremes; the standard-KD baseline against
torch's kl_div; the gradient alignment's three properties."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.dual_head_kd import (
    align_gradients,
    aligned_backward,
    binary_kl,
    binary_kl_norm,
    softmax_kd_loss,
)


def logits(seed: int = 0, shape: tuple[int, int] = (6, 5)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * 3, torch.randn(
        *shape, generator=g, dtype=torch.float64
    ) * 3


def bernoulli_kl(p: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(Bern(p) || Bern(sigmoid(q_logits))) = cross-entropy - entropy, through torch's BCE."""
    cross = F.binary_cross_entropy_with_logits(q_logits, p, reduction="none")
    entropy = F.binary_cross_entropy(p, p, reduction="none")
    return cross - entropy


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_binary_kl_is_the_bernoulli_kl(temperature: float) -> None:
    s, t = logits()
    expected = temperature**2 * bernoulli_kl(torch.sigmoid(t / temperature), s / temperature).sum(1)
    torch.testing.assert_close(binary_kl(s, t, temperature, reduction="none"), expected)
    torch.testing.assert_close(binary_kl(s, t, temperature), expected.mean())
    torch.testing.assert_close(binary_kl(s, s, temperature), torch.zeros((), dtype=torch.float64))


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_binary_kl_norm_is_the_half_bernoulli_kl_and_the_log_cosh_form(temperature: float) -> None:
    s, t = logits(1)
    half = torch.full_like(s, 0.5)
    from_definition = temperature**2 * bernoulli_kl(half, (s - t) / temperature).sum(1)
    log_cosh = temperature**2 * torch.log(torch.cosh((s - t) / (2 * temperature))).sum(1)
    torch.testing.assert_close(binary_kl_norm(s, t, temperature, reduction="none"), from_definition)
    torch.testing.assert_close(binary_kl_norm(s, t, temperature, reduction="none"), log_cosh)
    assert (binary_kl_norm(s, t, temperature, reduction="none") > 0).all()
    assert binary_kl_norm(s, s, temperature) == 0


def test_norm_is_shift_invariant_and_binary_kl_is_not() -> None:
    s, t = logits(2)
    shift = torch.randn(6, 1, dtype=torch.float64) * 5
    torch.testing.assert_close(binary_kl_norm(s + shift, t + shift), binary_kl_norm(s, t))
    assert not torch.allclose(binary_kl(s + shift, t + shift), binary_kl(s, t))
    assert binary_kl(s, t) >= 0


def test_norm_gradient_is_bounded_by_half_the_temperature() -> None:
    s, t = logits(3)
    s = (s * 1e3).requires_grad_(True)
    binary_kl_norm(s, t, temperature=3.0, reduction="sum").backward()
    assert s.grad.abs().max() <= 1.5 + 1e-12 and s.grad.abs().max() > 1.49


def test_gradcheck() -> None:
    s, t = logits(4, (3, 4))
    s.requires_grad_(True)
    t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: binary_kl(a, b, 2.0), (s, t))
    assert torch.autograd.gradcheck(lambda a, b: binary_kl_norm(a, b, 2.0), (s, t))
    assert torch.autograd.gradcheck(lambda a, b: softmax_kd_loss(a, b, 4.0), (s, t))


def test_extreme_logits_stay_finite() -> None:
    s = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], requires_grad=True)
    t = torch.tensor([[-1e4, 1e4, 0.0], [-1e4, 1e4, 3.0]])
    for loss_fn in (binary_kl, binary_kl_norm, softmax_kd_loss):
        s.grad = None
        loss = loss_fn(s, t)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    # Exact in log space: the first row's two logits are each 2e4 / T apart from the teacher's.
    assert float(binary_kl_norm(s.detach(), t, 2.0, reduction="none")[0]) == pytest.approx(
        4 * 2 * (1e4 / 2 - math.log(2)), rel=1e-5
    )
    assert binary_kl_norm(s.half(), t.half()).dtype == torch.float32


def test_softmax_kd_matches_torch_kl_div() -> None:
    s, t = logits(5)
    expected = 16 * F.kl_div(F.log_softmax(s / 4, 1), F.log_softmax(t / 4, 1), reduction="batchmean", log_target=True)
    torch.testing.assert_close(softmax_kd_loss(s, t, 4.0), expected)


def test_alignment_keeps_the_sum_without_conflict() -> None:
    ce = [torch.tensor([1.0, 0.0]), torch.tensor([[2.0]]), None]
    kd = [torch.tensor([0.5, 3.0]), None, torch.tensor([1.0])]
    combined = align_gradients(ce, kd)
    torch.testing.assert_close(combined[0], torch.tensor([1.5, 3.0]))
    torch.testing.assert_close(combined[1], torch.tensor([[2.0]]))
    torch.testing.assert_close(combined[2], torch.tensor([1.0]))


@pytest.mark.parametrize("per_parameter", [False, True])
def test_alignment_projects_a_conflicting_kd_gradient(per_parameter: bool) -> None:
    g = torch.Generator().manual_seed(6)
    ce = [torch.randn(3, generator=g, dtype=torch.float64), torch.randn(2, 2, generator=g, dtype=torch.float64)]
    kd = [-2 * ce[0] + 0.1, -ce[1] + 0.3]
    combined = align_gradients(ce, kd, per_parameter)
    projected = [c - e for c, e in zip(combined, ce, strict=True)]
    if per_parameter:
        for p, e in zip(projected, ce, strict=True):
            assert abs(float((p * e).sum())) < 1e-12
    else:
        assert abs(sum(float((p * e).sum()) for p, e in zip(projected, ce, strict=True))) < 1e-12
        # Removing g_CE's direction only: the rest of g_KD is untouched.
        flat_ce, flat_kd = torch.cat([c.flatten() for c in ce]), torch.cat([k.flatten() for k in kd])
        expected = flat_kd - (flat_kd @ flat_ce) / (flat_ce @ flat_ce) * flat_ce
        torch.testing.assert_close(torch.cat([p.flatten() for p in projected]), expected)
    assert float(sum((k * c).sum() for k, c in zip(kd, ce, strict=True))) < 0, "the input did conflict"


def test_aligned_backward_writes_the_aligned_gradients() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    ce_loss = layer(x).sum()
    kd_loss = -3 * layer(x).sum() + layer(x).square().sum()
    params = list(layer.parameters())
    ce_grads = torch.autograd.grad(ce_loss, params, retain_graph=True)
    kd_grads = torch.autograd.grad(kd_loss, params, retain_graph=True)
    conflict = aligned_backward(ce_loss, kd_loss, params)
    assert conflict
    for param, expected in zip(params, align_gradients(ce_grads, kd_grads), strict=True):
        torch.testing.assert_close(param.grad, expected)


def test_errors_name_the_argument() -> None:
    s, t = logits()
    with pytest.raises(ValueError, match="`teacher_logits`"):
        binary_kl_norm(s, t[:, :3])
    with pytest.raises(ValueError, match="`temperature`"):
        binary_kl(s, t, temperature=0.0)
    with pytest.raises(TypeError, match="`student_logits`"):
        binary_kl_norm(s.long(), t)
    with pytest.raises(ValueError, match="`reduction`"):
        binary_kl_norm(s, t, reduction="avg")
    with pytest.raises(ValueError, match="`kd_grads`"):
        align_gradients([torch.ones(2)], [torch.ones(2), None])
    with pytest.raises(ValueError, match=r"`kd_grads\[0\]`"):
        align_gradients([torch.ones(2)], [torch.ones(3)])


@pytest.mark.parametrize(("per_parameter", "projected"), [(False, False), (True, True)])
def test_aligned_backward_reports_a_per_parameter_projection(per_parameter: bool, projected: bool) -> None:
    """g_CE = ([1], [1]), g_KD = ([-0.5], [2]): the whole vectors agree (dot 1.5) but parameter 0's conflict."""
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    conflict = aligned_backward((a + b).sum(), (-0.5 * a + 2 * b).sum(), [a, b], per_parameter=per_parameter)
    assert conflict is projected
    expected_a = torch.tensor([1.0]) if per_parameter else torch.tensor([0.5])  # g_KD of `a` removed when projected
    torch.testing.assert_close(a.grad, expected_a)
    torch.testing.assert_close(b.grad, torch.tensor([3.0]))


@pytest.mark.parametrize("name", ["binary_kl", "binary_kl_norm", "softmax_kd_loss"])
def test_a_class_masked_in_both_student_and_teacher_adds_nothing(name: str) -> None:
    """#19 item 3: a class masked with -inf in both (e.g. a vocabulary mask) contributes 0, as a term 0 log 0, instead
    of turning the loss NaN; the value equals the loss over the unmasked classes, with finite gradients."""
    fn = {"binary_kl": binary_kl, "binary_kl_norm": binary_kl_norm, "softmax_kd_loss": softmax_kd_loss}[name]
    g = torch.Generator().manual_seed(3)
    student, teacher = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    mask = torch.tensor([False, False, False, False, True])
    x = student.clone().requires_grad_(True)
    value = fn(x.masked_fill(mask, -math.inf), teacher.masked_fill(mask, -math.inf), 2.0)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, fn(student[:, :4], teacher[:, :4], 2.0))
