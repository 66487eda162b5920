"""The Z-loss (arXiv 1604.08859; ZLoss's math) and, separately, PaLM's logit z-loss (LogitZLoss)
``coefficient * logsumexp^2``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.z_loss import logit_z_loss, standardized_logits, z_loss
from hf_margin.losses import LogitZLoss, ZLoss


def batch(n: int = 6, k: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=torch.float64) * 2, torch.randint(0, k, (n,), generator=g)


def test_value_matches_the_formula() -> None:
    logits, labels = batch()
    a, b, eps = 1.5, 2.0, 1e-6
    mu = logits.mean(1, keepdim=True)
    sigma = torch.sqrt((logits**2).mean(1, keepdim=True) - mu**2 + eps)  # population variance, as in the paper
    z_c = ((logits - mu) / sigma).gather(1, labels.unsqueeze(1)).squeeze(1)
    expected = F.softplus(a * (b - z_c)) / a
    torch.testing.assert_close(z_loss(logits, labels, a, b, eps=eps, reduction="none"), expected)
    torch.testing.assert_close(z_loss(logits, labels, a, b, eps=eps), expected.mean())
    torch.testing.assert_close(z_loss(logits, labels, a, b, eps=eps, reduction="sum"), expected.sum())
    population_std = logits.std(1, unbiased=False, keepdim=True)
    torch.testing.assert_close(standardized_logits(logits, 1e-300), (logits - mu) / population_std)


def test_shift_and_scale_invariant() -> None:
    logits, labels = batch()
    base = z_loss(logits, labels, a=2.0, b=1.0, eps=1e-12, reduction="none")
    for alpha, beta in ((3.0, 5.0), (0.01, -40.0), (250.0, 1e3)):
        torch.testing.assert_close(
            z_loss(alpha * logits + beta, labels, a=2.0, b=1.0, eps=1e-12, reduction="none"), base
        )
    # Not invariant to a negative scale: that reverses the ranking.
    assert not torch.allclose(z_loss(-logits, labels, 2.0, 1.0, reduction="none"), base)


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.0), (1.0, 2.0), (4.0, -1.0), (10.0, 0.5)])
def test_gradient_with_respect_to_the_target_z_score_lies_in_minus_one_zero(a: float, b: float) -> None:
    logits, labels = batch()
    rows = torch.arange(logits.shape[0])
    leaf = logits.clone().requires_grad_()
    z_loss(leaf, labels, a, b, reduction="sum").backward()
    z_grads = []
    for i in range(logits.shape[0]):
        row = logits[i : i + 1].clone().requires_grad_()
        standardized_logits(row)[0, labels[i]].backward()
        dz_do = row.grad[0]
        # The loss depends on row i only through z_c, so dL/do = dL/dz_c * dz_c/do.
        z_grads.append(float(leaf.grad[i] @ dz_do / (dz_do @ dz_do)))
        torch.testing.assert_close(leaf.grad[i], z_grads[-1] * dz_do)
    z_grad = torch.tensor(z_grads, dtype=torch.float64)
    assert ((z_grad > -1) & (z_grad < 0)).all(), z_grad
    z_c = standardized_logits(logits)[rows, labels]
    torch.testing.assert_close(z_grad, -torch.sigmoid(a * (b - z_c)))


def test_raising_the_target_logit_lowers_the_loss() -> None:
    logits, labels = batch()
    rows = torch.arange(logits.shape[0])
    raised = logits.clone()
    raised[rows, labels] += 1.0
    assert (
        z_loss(raised, labels, 1.0, 2.0, reduction="none") < z_loss(logits, labels, 1.0, 2.0, reduction="none")
    ).all()


def test_gradcheck() -> None:
    logits, labels = batch()
    for a, b in ((1.0, 2.0), (5.0, -0.5)):
        assert torch.autograd.gradcheck(
            lambda o: z_loss(o, labels, a, b),  # noqa: B023
            (logits.clone().requires_grad_(),),
        )
    two = logits[:, :2].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda o: z_loss(o, labels % 2, 1.0, 1.0, reduction="sum"), (two,))


def test_equal_and_extreme_logits_are_finite() -> None:
    equal = torch.full((3, 4), 7.0, requires_grad=True)
    loss = z_loss(equal, torch.tensor([0, 1, 3]), a=2.0, b=1.5)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(math.log1p(math.exp(3.0)) / 2.0, rel=1e-6), "z = 0: softplus(ab)/a"
    assert torch.isfinite(equal.grad).all()
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        extreme = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4]], dtype=dtype, requires_grad=True)
        loss = z_loss(extreme, torch.tensor([0, 1, 2]), a=1.0, b=1.0)
        loss.backward()
        assert loss.dtype != torch.bfloat16 and torch.isfinite(loss) and torch.isfinite(extreme.grad).all(), dtype


def test_z_loss_bad_input_names_the_argument() -> None:
    logits, labels = batch(n=3, k=4)
    with pytest.raises(ValueError, match="num_classes >= 2"):
        z_loss(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long), 1.0, 1.0)
    for a in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="`a` must be a finite number > 0"):
            z_loss(logits, labels, a, 1.0)
    with pytest.raises(ValueError, match="`b` must be a finite real number"):
        z_loss(logits, labels, 1.0, float("nan"))
    with pytest.raises(ValueError, match="`eps` must be a finite number > 0"):
        z_loss(logits, labels, 1.0, 1.0, eps=0.0)
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 3\]"):
        z_loss(logits, torch.tensor([0, 4, 1]), 1.0, 1.0)
    with pytest.raises(ValueError, match=r"`logits` must have shape \(batch, num_classes\)"):
        z_loss(torch.zeros(2, 3, 4), labels, 1.0, 1.0)
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        z_loss(logits, labels, 1.0, 1.0, reduction="avg")
    with pytest.raises(TypeError):
        z_loss(logits, labels)  # type: ignore[call-arg]  # a and b have no default


def test_logit_z_loss_value_and_shapes() -> None:
    logits, _ = batch()
    lse = torch.logsumexp(logits, dim=-1)
    torch.testing.assert_close(logit_z_loss(logits), 1e-4 * (lse**2).mean())
    torch.testing.assert_close(logit_z_loss(logits, 1e-3, reduction="sum"), 1e-3 * (lse**2).sum())
    sequence = logits.reshape(2, 3, 5)
    per_token = logit_z_loss(sequence, 0.5, reduction="none")
    assert per_token.shape == (2, 3)
    torch.testing.assert_close(per_token, 0.5 * torch.logsumexp(sequence, -1) ** 2)
    assert float(logit_z_loss(logits, 0.0)) == 0.0


def test_logit_z_loss_gradient() -> None:
    logits, _ = batch()
    leaf = logits.clone().requires_grad_()
    coefficient = 0.01
    logit_z_loss(leaf, coefficient).backward()
    lse = torch.logsumexp(logits, dim=-1, keepdim=True)
    expected = 2 * coefficient * lse * logits.softmax(-1) / logits.shape[0]
    torch.testing.assert_close(leaf.grad, expected)
    assert torch.autograd.gradcheck(lambda o: logit_z_loss(o, 0.1), (logits.clone().requires_grad_(),))


def test_logit_z_loss_vanishes_when_the_partition_function_is_one() -> None:
    logits, _ = batch()
    normalised = torch.log_softmax(logits, -1).requires_grad_()  # logsumexp = 0
    loss = logit_z_loss(normalised, 1.0)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-28)
    torch.testing.assert_close(normalised.grad, torch.zeros_like(normalised))
    assert float(logit_z_loss(torch.full((2, 4), -math.log(4)), 1.0)) == pytest.approx(0.0, abs=1e-12)


def test_logit_z_loss_extremes_and_errors() -> None:
    extreme = torch.tensor([[1e4, -1e4], [-1e4, -1e4]], requires_grad=True)
    loss = logit_z_loss(extreme)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(extreme.grad).all()
    assert float(loss.detach()) == pytest.approx(1e-4 * ((1e4) ** 2 + (-1e4 + math.log(2)) ** 2) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="`coefficient` must lie in"):
        logit_z_loss(extreme, -1e-4)
    with pytest.raises(ValueError, match="`coefficient` must be finite"):
        logit_z_loss(extreme, float("inf"))
    with pytest.raises(ValueError, match="`logits` must have shape"):
        logit_z_loss(torch.tensor(1.0))
    with pytest.raises(TypeError, match="`logits` must be a floating-point"):
        logit_z_loss(torch.ones(2, 3, dtype=torch.long))


def test_masked_non_target_class_is_finite() -> None:
    """#19 item 3: a class masked with -inf is left out of the standardisation (finite value and gradients, as
    F.cross_entropy allows); the loss equals the one over the unmasked classes only."""
    logits, labels = batch(n=4, k=5)
    labels = torch.tensor([0, 1, 2, 3])
    x = logits.clone().requires_grad_(True)
    value = z_loss(x.masked_fill(torch.tensor([False] * 4 + [True]), float("-inf")), labels, a=1.0, b=2.0)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all() and (x.grad[:, 4] == 0).all()
    torch.testing.assert_close(value, z_loss(logits[:, :4], labels, a=1.0, b=2.0))
    module = ZLoss(a=1.0, b=2.0)
    assert torch.isfinite(module(logits.masked_fill(torch.tensor([False] * 4 + [True]), float("-inf")), labels))


def test_nan_logits_give_nan_and_wrong_types_name_the_argument() -> None:
    """#19 items 3 and 5: NaN propagates (never a plausible number); empty batches and string settings are named."""
    logits, labels = batch(n=3, k=4)
    assert torch.isnan(z_loss(logits.masked_fill(torch.eye(3, 4, dtype=torch.bool), float("nan")), labels, 1.0, 1.0))
    with pytest.raises(ValueError, match="`logits`"):
        z_loss(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 1.0, 1.0)
    with pytest.raises(TypeError, match="`a`"):
        z_loss(logits, labels, "1.0", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`b`"):
        ZLoss(a=1.0, b="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`coefficient`"):
        LogitZLoss("1e-4")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`eps`"):
        ZLoss(a=1.0, b=1.0, eps=None)  # type: ignore[arg-type]
