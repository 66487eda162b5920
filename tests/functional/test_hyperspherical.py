"""hyperspherical_loss and hyperspherical_prototypes (arXiv 2102.03243): the spec's numeric example, the neutral
case (CosFace with m = 0), invariances of the prototypes, gradcheck, bf16 and extreme inputs, bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional import cosface_loss, hyperspherical_loss, hyperspherical_prototypes


def test_spec_numeric_example() -> None:
    weight, f = torch.eye(2, dtype=torch.float64), torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    assert hyperspherical_loss(f, weight, torch.tensor([1])).item() == pytest.approx(0.126928, abs=1e-6)
    assert hyperspherical_loss(f, weight, torch.tensor([0])).item() == pytest.approx(2.126928, abs=1e-6)
    _, prototype = hyperspherical_prototypes(torch.tensor([[1.0, 1.0], [2.0, 0.5]]), torch.tensor([0, 0]))
    torch.testing.assert_close(prototype, torch.tensor([[0.870200, 0.492699]]), atol=1e-6, rtol=0)


def test_equals_cosface_with_zero_margin_and_the_scaled_cosine_ce() -> None:
    g = torch.Generator().manual_seed(0)
    x, w, y = torch.randn(9, 5, generator=g), torch.randn(4, 5, generator=g), torch.arange(9) % 4
    for reduction in ("mean", "sum", "none"):
        ours = hyperspherical_loss(x, w, y, scale=7.0, reduction=reduction)
        torch.testing.assert_close(ours, cosface_loss(x, w, y, margin=0.0, scale=7.0, reduction=reduction))
    reference = F.cross_entropy(7.0 * F.normalize(x, dim=1) @ F.normalize(w, dim=1).T, y)
    torch.testing.assert_close(hyperspherical_loss(x, w, y, scale=7.0), reference)


def test_prototypes_ignore_scale_and_per_sample_norm_and_sort_classes() -> None:
    g = torch.Generator().manual_seed(1)
    x, labels = torch.randn(12, 6, generator=g), torch.tensor([7, 3, 3, 7, 9, 9, 3, 7, 9, 3, 7, 9])
    classes, prototypes = hyperspherical_prototypes(x, labels)
    assert classes.tolist() == [3, 7, 9]
    torch.testing.assert_close(prototypes.norm(dim=1), torch.ones(3))
    rescaled = x * torch.rand(12, 1, generator=g).add(0.1) * 10.0  # sphere radius s and per-sample scale
    torch.testing.assert_close(hyperspherical_prototypes(rescaled, labels)[1], prototypes)
    expected = F.normalize(F.normalize(x[labels == 7], dim=1).mean(0), dim=0)
    torch.testing.assert_close(prototypes[1], expected)


def test_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 1])
    assert torch.autograd.gradcheck(lambda a, b: hyperspherical_loss(a, b, y, scale=10.0), (x, w))
    assert torch.autograd.gradcheck(lambda a: hyperspherical_prototypes(a, y)[1], (x,))


def test_bf16_autocast_gives_float32_values_and_finite_gradients() -> None:
    x = torch.randn(6, 8).to(torch.bfloat16).requires_grad_(True)
    w = torch.randn(3, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = hyperspherical_loss(x, w, torch.arange(6) % 3)
        _, prototypes = hyperspherical_prototypes(x, torch.arange(6) % 3)
    loss.backward()
    assert loss.dtype == torch.float32 and prototypes.dtype == torch.float32
    assert torch.isfinite(x.grad.float()).all() and torch.isfinite(w.grad).all()


def test_extreme_but_finite_inputs_stay_finite() -> None:
    w = torch.eye(3)
    x = torch.tensor([[1e30, 0.0, 0.0], [0.0, -1e30, 0.0], [1e-30, 0.0, 0.0]], requires_grad=True)
    loss = hyperspherical_loss(x, w, torch.tensor([0, 1, 2]), scale=1e4)  # cosines of exactly +-1, huge logits
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    half = torch.full((2, 3), 6e4, dtype=torch.float16)  # its squared norm overflows float16
    assert torch.isfinite(hyperspherical_prototypes(half, torch.tensor([0, 0]))[1]).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"scale": 0.0}, ValueError, "scale"),
        ({"scale": "10"}, TypeError, "scale"),
        ({"reduction": "avg"}, ValueError, "reduction"),
        ({"labels": torch.tensor([0, 5])}, ValueError, "labels"),
        ({"weight": torch.randn(3)}, ValueError, "weight"),
        ({"embeddings": torch.randn(2, 5)}, ValueError, "embeddings"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs: dict, error: type[Exception], match: str) -> None:
    inputs = {"embeddings": torch.randn(2, 4), "weight": torch.randn(3, 4), "labels": torch.tensor([0, 2])}
    with pytest.raises(error, match=match):
        hyperspherical_loss(**{**inputs, **kwargs})
    with pytest.raises(TypeError, match="labels"):
        hyperspherical_prototypes(torch.randn(2, 4), torch.tensor([0.0, 1.0]))
