"""MPT's losses: the margin-calibrated CE (b = 0 is CE; the bias's effect on old/new targets; against torch's CE
on hand-shifted logits), focal distillation KL and L2 against hand-written formulas (teacher-correctness weights
alpha + beta vs alpha, zero when student = teacher, no tau^2), gradcheck, extremes, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.negative_flips import (
    focal_distillation_kl,
    focal_distillation_l2,
    focal_weights,
    logit_bias_cross_entropy,
)


def batch(seed: int = 0, classes: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(8, classes, generator=g, dtype=torch.float64) * 2
    teacher = torch.randn(8, classes, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(classes, (8,), generator=g)
    labels[:4] = teacher[:4].argmax(1)  # the teacher is right on (at least) half the batch
    return student, teacher, labels


def test_zero_bias_is_cross_entropy_and_bias_matches_shifted_logits() -> None:
    z, _, y = batch()
    torch.testing.assert_close(logit_bias_cross_entropy(z, y, [4, 5], bias=0.0), F.cross_entropy(z, y))
    shifted = z.clone()
    shifted[:, 4:] += 4.0
    torch.testing.assert_close(logit_bias_cross_entropy(z, y, range(4, 6), 4.0), F.cross_entropy(shifted, y))
    w = torch.linspace(0.5, 2.0, 8, dtype=torch.float64)
    torch.testing.assert_close(
        logit_bias_cross_entropy(z, y, [4, 5], 4.0, sample_weight=w),
        (F.cross_entropy(shifted, y, reduction="none") * w).mean(),
    )


def test_bias_raises_old_targets_loss_and_lowers_new_targets_loss() -> None:
    z, _, _ = batch(1)
    old_targets, new_targets = torch.zeros(8, dtype=torch.long), torch.full((8,), 5)
    plain_old = logit_bias_cross_entropy(z, old_targets, [4, 5], 0.0, reduction="none")
    plain_new = logit_bias_cross_entropy(z, new_targets, [4, 5], 0.0, reduction="none")
    assert (logit_bias_cross_entropy(z, old_targets, [4, 5], 2.0, reduction="none") > plain_old).all()
    assert (logit_bias_cross_entropy(z, new_targets, [4, 5], 2.0, reduction="none") < plain_new).all()


def test_focal_weights_follow_the_teacher() -> None:
    teacher = torch.tensor([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 7])  # right, wrong, a class the teacher does not have
    torch.testing.assert_close(focal_weights(teacher, labels, 1.0, 5.0), torch.tensor([6.0, 1.0, 1.0]))


@pytest.mark.parametrize("temperature", [1.0, 5.0])
def test_focal_kl_matches_the_formula(temperature: float) -> None:
    s, t, y = batch(2)
    p_t = torch.softmax(t / temperature, 1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(s / temperature, 1))).sum(1)
    weight = 1.0 + 5.0 * (t.argmax(1) == y).double()
    assert (weight == 6).any() and (weight == 1).any(), "the batch has both cases"
    torch.testing.assert_close(focal_distillation_kl(s, t, y, 1.0, 5.0, temperature, "none"), weight * kl)
    torch.testing.assert_close(focal_distillation_kl(s, t, y, 1.0, 5.0, temperature), (weight * kl).mean())
    torch.testing.assert_close(focal_distillation_kl(s, s, y, 1.0, 5.0, temperature), torch.zeros((), dtype=s.dtype))


def test_focal_l2_matches_the_formula() -> None:
    s, t, y = batch(3)
    weight = 2.0 + 3.0 * (t.argmax(1) == y).double()
    expected = 0.4 * weight * 0.5 * (s - t).square().mean(1)
    torch.testing.assert_close(focal_distillation_l2(s, t, y, 2.0, 3.0, reduction="none"), expected)
    assert focal_distillation_l2(t, t, y) == 0


def test_old_teacher_on_old_columns_gives_new_class_samples_weight_alpha() -> None:
    s, t, _ = batch(4)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 4, 5])  # 4 and 5 are new: the 4-class old teacher cannot be right
    old_teacher = t[:, :4]
    values = focal_distillation_kl(s[:, :4], old_teacher, labels, 1.0, 5.0, 5.0, "none")
    alpha_only = focal_distillation_kl(s[:, :4], old_teacher, labels, 1.0, 0.0, 5.0, "none")
    torch.testing.assert_close(values[4:], alpha_only[4:])


def test_teacher_gets_no_gradient_and_gradcheck() -> None:
    s, t, y = batch(5)
    s.requires_grad_(True)
    t.requires_grad_(True)
    focal_distillation_kl(s, t, y).backward()
    assert t.grad is None
    assert torch.autograd.gradcheck(lambda x: focal_distillation_kl(x, t, y, temperature=2.0), (s,))
    assert torch.autograd.gradcheck(lambda x: focal_distillation_l2(x, t, y), (s,))
    assert torch.autograd.gradcheck(lambda x: logit_bias_cross_entropy(x, y, [3, 4, 5], 4.0), (s,))


def test_extreme_logits_stay_finite() -> None:
    s = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], requires_grad=True)
    t = torch.tensor([[-1e4, 1e4, 0.0], [-1e4, 1e4, 0.0]])
    y = torch.tensor([0, 1])
    loss = focal_distillation_kl(s, t, y) + focal_distillation_l2(s, t, y) + logit_bias_cross_entropy(s, y, [2], 1e4)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_errors_name_the_argument() -> None:
    s, t, y = batch()
    with pytest.raises(ValueError, match="`new_class_ids`"):
        logit_bias_cross_entropy(s, y, [6])
    with pytest.raises(ValueError, match="`bias`"):
        logit_bias_cross_entropy(s, y, [5], bias=-1.0)
    with pytest.raises(ValueError, match="`labels`"):
        logit_bias_cross_entropy(s, y + 6, [5])
    with pytest.raises(ValueError, match="`teacher_logits`"):
        focal_distillation_kl(s, t[:, :4], y)
    with pytest.raises(TypeError, match="`labels`"):
        focal_distillation_kl(s, t, y.double())
    with pytest.raises(ValueError, match="`beta_fd`"):
        focal_distillation_l2(s, t, y, beta_fd=-1.0)
    with pytest.raises(ValueError, match="`temperature`"):
        focal_distillation_kl(s, t, y, temperature=0.0)


@pytest.mark.parametrize("name", ["kl", "l2"])
def test_a_class_masked_in_both_student_and_teacher_is_finite(name: str) -> None:
    """#19 item 3: a class masked with -inf in student and teacher gives a finite loss with finite gradients."""
    g = torch.Generator().manual_seed(4)
    student, teacher = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    labels = torch.tensor([0, 1, 2, 3])
    mask = torch.tensor([False, False, False, False, True])
    x = student.clone().requires_grad_(True)
    fn = focal_distillation_kl if name == "kl" else focal_distillation_l2
    value = fn(x.masked_fill(mask, float("-inf")), teacher.masked_fill(mask, float("-inf")), labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    if name == "kl":  # the masked class has probability 0 on both sides: the KL over the other four
        torch.testing.assert_close(value, fn(student[:, :4], teacher[:, :4], labels))
