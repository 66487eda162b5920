"""The hand-written backward passes of the fused kernels equal plain autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional import margin_cross_entropy, margin_logits, normalized_linear


def test_normalized_linear_value_and_gradcheck() -> None:
    x_hat = F.normalize(torch.randn(5, 4, dtype=torch.float64), dim=1).requires_grad_(True)
    weight = (3 * torch.randn(6, 4, dtype=torch.float64)).requires_grad_(True)
    torch.testing.assert_close(normalized_linear(x_hat, weight), x_hat @ F.normalize(weight, dim=1).t())
    assert torch.autograd.gradcheck(normalized_linear, (x_hat, weight))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_margin_cross_entropy_equals_cross_entropy_of_the_margin_logits(reduction: str) -> None:
    cosine = (2 * torch.rand(7, 5, dtype=torch.float64) - 1).requires_grad_(True)
    target = (2 * torch.rand(7, dtype=torch.float64) - 1).requires_grad_(True)
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 2])
    fused = margin_cross_entropy(cosine, target, labels, 30.0, reduction)
    plain = F.cross_entropy(margin_logits(cosine, labels, target, 30.0), labels, reduction=reduction)
    torch.testing.assert_close(fused, plain)
    weights = torch.rand_like(fused)
    fused_grads = torch.autograd.grad((fused * weights).sum(), (cosine, target))
    plain_grads = torch.autograd.grad((plain * weights).sum(), (cosine, target))
    for ours, reference in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(ours, reference)
    assert torch.autograd.gradcheck(lambda c, t: margin_cross_entropy(c, t, labels, 30.0, reduction), (cosine, target))


def test_backward_twice_with_retain_graph() -> None:
    cosine = torch.rand(3, 4, requires_grad=True)
    target = torch.rand(3, requires_grad=True)
    loss = margin_cross_entropy(normalized_linear(cosine, torch.randn(4, 4)), target, torch.tensor([0, 1, 2]), 8.0)
    first = torch.autograd.grad(loss, (cosine, target), retain_graph=True)
    second = torch.autograd.grad(loss, (cosine, target))
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b)


def test_huge_logits_stay_finite() -> None:
    cosine = torch.tensor([[1.0, -1.0, 1.0]], requires_grad=True)
    target = torch.tensor([-1.0], requires_grad=True)
    loss = margin_cross_entropy(cosine, target, torch.tensor([0]), 1e4)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(cosine.grad).all() and torch.isfinite(target.grad).all()


@pytest.mark.parametrize(
    ("scale", "reduction", "error", "match"),
    [
        (8.0, "avg", ValueError, "`reduction` must be one of"),
        (float("nan"), "mean", ValueError, "`scale` must be a finite number > 0"),
        (float("inf"), "mean", ValueError, "`scale` must be a finite number > 0"),
        ("8", "mean", TypeError, "`scale` must be a real number"),
    ],
)
def test_margin_cross_entropy_checks_scale_and_reduction(
    scale: object, reduction: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        margin_cross_entropy(torch.rand(2, 3), torch.rand(2), torch.tensor([0, 1]), scale, reduction)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_margin_cross_entropy_takes_any_integer_labels(dtype: torch.dtype) -> None:
    cosine, target, labels = torch.rand(3, 4), torch.rand(3), torch.tensor([0, 3, 1])
    expected = margin_cross_entropy(cosine, target, labels, 8.0)
    torch.testing.assert_close(margin_cross_entropy(cosine, target, labels.to(dtype), 8.0), expected)
