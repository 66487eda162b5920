"""DC / DCC gradient matching (arXiv 2202.02916): the distance D against a hand computation and its properties,
DCC = DC for one class, the warm-up switch, gradcheck w.r.t. synthetic images, extreme inputs and input errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hf_margin.functional.gradient_matching import (
    dc_loss,
    dcc_loss,
    gradient_matching_distance,
    parameter_gradients,
    use_contrastive,
)


def _tiny_net(dtype: torch.dtype = torch.float32, classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, classes)).to(
        dtype
    )


def _per_class(n: int, classes: int = 3, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    return [torch.randn(n, 1, 4, 4, dtype=dtype) for _ in range(classes)]


def _hand_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    total = 0.0
    for x, y in zip(a, b, strict=True):
        if x.dim() < 2:
            continue
        for row_x, row_y in zip(x.reshape(x.shape[0], -1).tolist(), y.reshape(y.shape[0], -1).tolist(), strict=True):
            dot = sum(p * q for p, q in zip(row_x, row_y, strict=True))
            norms = sum(p * p for p in row_x) ** 0.5 * sum(q * q for q in row_y) ** 0.5
            total += 1 - dot / (norms + 1e-6)
    return total


def test_hand_example() -> None:
    a = [torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([5.0, -5.0])]
    b = [torch.tensor([[3.0, 4.0], [0.0, -2.0]]), torch.tensor([-5.0, 5.0])]
    # row 1: 1 - 25 / (25 + 1e-6); row 2: orthogonal, 1 - 0; the bias (1-D) contributes 0
    expected = (1 - 25 / (25 + 1e-6)) + 1.0
    assert gradient_matching_distance(a, b).item() == pytest.approx(expected, abs=1e-6)


def test_matches_independent_reference_on_conv_shapes() -> None:
    a = [torch.randn(4, 3, 3, 3), torch.randn(4), torch.randn(5, 2, 7), torch.randn(6, 8)]
    b = [torch.randn_like(t) for t in a]
    assert gradient_matching_distance(a, b).item() == pytest.approx(_hand_distance(a, b), rel=1e-5)


def test_invariant_to_positive_rescaling_so_sum_and_mean_agree() -> None:
    a = [torch.randn(4, 3, 3, 3), torch.randn(6, 8)]
    b = [torch.randn_like(t) for t in a]
    base = gradient_matching_distance(a, b)
    for scale in (1e-2, 3.0, 10.0):  # e.g. a sum over 10 classes is 10 x their mean
        assert torch.allclose(gradient_matching_distance([scale * t for t in a], b), base, atol=1e-4)
        assert torch.allclose(gradient_matching_distance(a, [scale * t for t in b]), base, atol=1e-4)
    flipped = gradient_matching_distance(a, [-t for t in b])
    assert not torch.allclose(flipped, base)  # a negative scale is not an invariance


def test_range_is_zero_to_two_per_row() -> None:
    a = [torch.randn(4, 3, 3, 3), torch.randn(6, 8)]
    rows = 4 + 6
    assert gradient_matching_distance(a, a).item() == pytest.approx(0.0, abs=1e-5)
    assert gradient_matching_distance(a, [-t for t in a]).item() == pytest.approx(2 * rows, abs=1e-5)
    for _ in range(20):
        value = gradient_matching_distance(a, [torch.randn_like(t) for t in a]).item()
        assert 0 <= value <= 2 * rows


def test_bias_only_model_gives_zero() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    model[1].weight.requires_grad_(False)
    real, synthetic = _per_class(5), _per_class(1)
    assert dc_loss(model, real, synthetic).item() == 0.0
    assert dcc_loss(model, real, synthetic).item() == 0.0
    assert gradient_matching_distance([torch.randn(3)], [torch.randn(3)]).item() == 0.0


def test_dcc_equals_dc_for_one_class() -> None:
    model = _tiny_net(classes=3)
    real, synthetic = _per_class(6, classes=1), _per_class(2, classes=1)
    assert torch.allclose(dcc_loss(model, real, synthetic), dc_loss(model, real, synthetic))


def test_dc_and_dcc_against_a_direct_computation() -> None:
    model = _tiny_net()
    real, synthetic = _per_class(6), _per_class(2)
    params = list(model.parameters())

    def grad(x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.autograd.grad(F.cross_entropy(model(x), y), params))

    full = lambda x, c: torch.full((len(x),), c)  # noqa: E731
    dc = sum(
        _hand_distance(grad(s, full(s, c)), grad(r, full(r, c)))
        for c, (r, s) in enumerate(zip(real, synthetic, strict=True))
    )
    real_sum = [sum(layer) for layer in zip(*[grad(r, full(r, c)) for c, r in enumerate(real)], strict=True)]
    all_syn, all_labels = torch.cat(synthetic), torch.cat([full(s, c) for c, s in enumerate(synthetic)])
    dcc = _hand_distance(grad(all_syn, all_labels), real_sum)  # the sum, not the mean: D does not care
    assert dc_loss(model, real, synthetic).item() == pytest.approx(dc, rel=1e-5)
    assert dcc_loss(model, real, synthetic).item() == pytest.approx(dcc, rel=1e-4)
    assert dcc_loss(model, real, synthetic).item() != pytest.approx(dc, rel=1e-3)


def test_gradcheck_wrt_synthetic_images_float64() -> None:
    model = _tiny_net(torch.float64, classes=2)
    real = _per_class(4, classes=2, dtype=torch.float64)
    syn = torch.randn(2, 1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    for loss in (dc_loss, dcc_loss):
        assert torch.autograd.gradcheck(lambda s, f=loss: f(model, real, list(s)), (syn,))


def test_loss_is_differentiable_only_on_the_synthetic_side() -> None:
    model = _tiny_net()
    real = [r.requires_grad_(True) for r in _per_class(4)]
    synthetic = [s.requires_grad_(True) for s in _per_class(1)]
    dcc_loss(model, real, synthetic).backward()
    assert all(r.grad is None for r in real)
    assert all(s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0 for s in synthetic)


def test_extreme_inputs_stay_finite() -> None:
    model = _tiny_net()
    real = [torch.full((3, 1, 4, 4), 1e4), torch.zeros(3, 1, 4, 4), -1e4 * torch.ones(3, 1, 4, 4)]
    synthetic = [
        s.requires_grad_(True) for s in (torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 1e4), torch.ones(1, 1, 4, 4))
    ]
    for loss_fn in (dc_loss, dcc_loss):
        loss = loss_fn(model, real, synthetic)
        (grad,) = torch.autograd.grad(loss, synthetic[0])
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
    zeros = [torch.zeros(3, 4)]
    assert gradient_matching_distance(zeros, zeros).item() == pytest.approx(3.0)  # zero gradients: cos 0


def test_float32_under_half_precision_gradients() -> None:
    a = [torch.randn(4, 9).to(torch.bfloat16)]
    out = gradient_matching_distance(a, a)
    assert out.dtype == torch.float32 and out.item() == pytest.approx(0.0, abs=1e-4)


def test_parameter_gradients_detached_unless_asked() -> None:
    model = _tiny_net()
    x = torch.randn(2, 1, 4, 4, requires_grad=True)
    y = torch.tensor([0, 1])
    assert not any(g.requires_grad for g in parameter_gradients(model, x, y))
    assert all(g.requires_grad for g in parameter_gradients(model, x, y, create_graph=True))


def test_warm_up_switch() -> None:
    assert not use_contrastive(0, 0)
    assert not use_contrastive(249, 9)
    assert use_contrastive(250, 0)
    assert use_contrastive(0, 10)
    # ipc 1 / 10: inner indices 0..9, only the outer condition fires
    assert [use_contrastive(o, i) for o in (249, 250) for i in range(10)] == [False] * 10 + [True] * 10
    assert use_contrastive(3, 0, outer_warmup=3, inner_warmup=100)
    assert use_contrastive(0, 0, outer_warmup=0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: gradient_matching_distance([torch.zeros(2, 2)], [torch.zeros(2, 3)]), r"grads_a\[0\].*\(2, 3\)"),
        (lambda: gradient_matching_distance([torch.zeros(2, 2)], []), "grads_a.*1 and 0"),
        (lambda: gradient_matching_distance(torch.zeros(2, 2), [torch.zeros(2, 2)]), "grads_a.*sequence"),
        (lambda: dc_loss(_tiny_net(), _per_class(2), _per_class(1, classes=2)), "real.*synthetic.*3 and 2"),
        (lambda: dcc_loss(_tiny_net(), [], []), "real.*at least 1 class"),
        (lambda: dcc_loss(_tiny_net(), _per_class(2), [torch.zeros(0, 1, 4, 4)] * 3), "synthetic.*empty"),
        (lambda: dc_loss(_tiny_net(), _per_class(2), [torch.zeros(1, 1, 5, 5)] * 3), r"real\[0\].*\(1, 5, 5\)"),
        (lambda: use_contrastive(-1, 0), "outer_iteration.*>= 0"),
        (lambda: use_contrastive(0, 0, inner_warmup=1.5), "inner_warmup"),  # type: ignore[arg-type]
    ],
)
def test_errors_name_the_argument(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((ValueError, TypeError), match=match):
        call()
