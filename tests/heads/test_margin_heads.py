"""Properties of the margin heads: base cases, equivalences between heads, gradients, edge cases, errors."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional import (
    adaface_margin_scaler,
    adaface_target,
    arcface_loss,
    arcface_target,
    assign_sorted_margins,
    combined_target,
    cosface_loss,
    cosface_target,
    cosine_matrix,
    elastic_margins,
)
from hf_margin.heads import (
    HEAD_TYPES,
    AdaFaceHead,
    ArcFaceHead,
    CombinedMarginHead,
    CosFaceHead,
    ElasticArcFaceHead,
    ElasticCosFaceHead,
    MarginHead,
    SoftmaxHead,
    build_head,
)

D, C, B = 8, 5, 6


def _batch(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(B, D, dtype=dtype), torch.tensor([0, 1, 2, 3, 4, 0])


def _scaled_cosine_ce(head: MarginHead, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    cos = F.normalize(x.double(), dim=1) @ F.normalize(head.weight.double(), dim=1).t()
    return F.cross_entropy(head.scale * cos, y)


def _copy_weight(target: MarginHead, source: MarginHead) -> None:
    with torch.no_grad():
        target.weight.copy_(source.weight)


# ---------------------------------------------------------------- base cases: margin 0 is scaled-cosine CE


@pytest.mark.parametrize(
    "head",
    [
        ArcFaceHead(D, C, margin=0.0, scale=16),
        ArcFaceHead(D, C, margin=0.0, scale=16, boundary="easy_margin"),
        ArcFaceHead(D, C, margin=0.0, scale=16, gradient="straight_through"),
        CosFaceHead(D, C, margin=0.0, scale=16),
        CombinedMarginHead(D, C, m1=1.0, m2=0.0, m3=0.0, scale=16),
        ElasticArcFaceHead(D, C, margin=0.0, std=0.0, scale=16),
        ElasticCosFaceHead(D, C, margin=0.0, std=0.0, scale=16),
    ],
    ids=lambda h: type(h).__name__,
)
def test_zero_margin_is_scaled_cosine_cross_entropy(head: MarginHead) -> None:
    x, y = _batch()
    torch.testing.assert_close(head(x, y).double(), _scaled_cosine_ce(head, x, y), rtol=1e-5, atol=1e-5)


def test_adaface_zero_margin_is_scaled_clamped_cosine_cross_entropy() -> None:
    head = AdaFaceHead(D, C, margin=0.0, scale=16)
    x, y = _batch()
    cos = (F.normalize(x, dim=1) @ F.normalize(head.weight, dim=1).t()).clamp(-1 + 1e-3, 1 - 1e-3)
    torch.testing.assert_close(head(x, y), F.cross_entropy(16 * cos, y), rtol=1e-5, atol=1e-5)


def test_margin_changes_only_the_target_logit() -> None:
    head = ArcFaceHead(D, C, margin=0.5, scale=10)
    x, y = _batch()
    with_margin, plain = head.margin_logits(x, y), head.get_logits(x)
    changed = with_margin != plain
    assert changed[torch.arange(B), y].all()
    changed[torch.arange(B), y] = False
    assert not changed.any()
    assert (with_margin[torch.arange(B), y] < plain[torch.arange(B), y]).all()


def test_softmax_head_is_linear_cross_entropy() -> None:
    head = SoftmaxHead(D, C)
    with torch.no_grad():
        head.bias.uniform_()
    x, y = _batch()
    expected = F.cross_entropy(F.linear(x, head.weight, head.bias), y)
    torch.testing.assert_close(head(x, y), expected)
    torch.testing.assert_close(head.get_logits(x), F.linear(x, head.weight, head.bias))


# ---------------------------------------------------------------- equivalences between heads


def test_arcface_and_cosface_formulas() -> None:
    head_a, head_c = ArcFaceHead(D, C, margin=0.3, scale=8), CosFaceHead(D, C, margin=0.2, scale=8)
    x, y = _batch()
    cos = F.normalize(x, dim=1) @ F.normalize(head_a.weight, dim=1).t()
    theta = torch.acos(cos[torch.arange(B), y])
    arc_logits = (8 * cos).index_put((torch.arange(B), y), 8 * torch.cos(theta + 0.3))
    torch.testing.assert_close(head_a.margin_logits(x, y), arc_logits, rtol=1e-5, atol=1e-5)
    _copy_weight(head_c, head_a)
    cos_logits = 8 * (cos - 0.2 * F.one_hot(y, C))
    torch.testing.assert_close(head_c.margin_logits(x, y), cos_logits, rtol=1e-5, atol=1e-5)


def test_arcface_threshold_and_easy_margin_branches() -> None:
    m = 0.5
    cos = torch.tensor([0.9, 0.1, -0.5, -0.95, -1.0], dtype=torch.float64)
    theta = torch.acos(cos)
    threshold = arcface_target(cos, m, "threshold")
    expected = torch.where(theta <= math.pi - m, torch.cos(theta + m), cos - m * math.sin(m))
    torch.testing.assert_close(threshold, expected)
    easy = arcface_target(cos, m, "easy_margin")
    torch.testing.assert_close(easy, torch.where(cos > 0, torch.cos(theta + m), cos))
    torch.testing.assert_close(arcface_target(cos, m, "none"), torch.cos(theta + m))


def test_combined_margin_special_cases() -> None:
    x, y = _batch()
    combined_arc = CombinedMarginHead(D, C, m1=1.0, m2=0.4, m3=0.0, scale=8)
    arc = ArcFaceHead(D, C, margin=0.4, scale=8, boundary="none")
    _copy_weight(arc, combined_arc)
    torch.testing.assert_close(combined_arc(x, y), arc(x, y))
    combined_cos = CombinedMarginHead(D, C, m1=1.0, m2=0.0, m3=0.3, scale=8)
    cos = CosFaceHead(D, C, margin=0.3, scale=8)
    _copy_weight(cos, combined_cos)
    torch.testing.assert_close(combined_cos(x, y), cos(x, y))
    sphere = CombinedMarginHead(D, C, m1=2.0, m2=0.1, m3=0.2, scale=8)
    cosine = F.normalize(x, dim=1) @ F.normalize(sphere.weight, dim=1).t()
    theta = torch.acos(cosine[torch.arange(B), y])
    expected = (8 * cosine).index_put((torch.arange(B), y), 8 * (torch.cos(2 * theta + 0.1) - 0.2))
    torch.testing.assert_close(sphere.margin_logits(x, y), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("boundary", ["threshold", "easy_margin", "none"])
def test_elastic_arcface_with_zero_std_is_arcface(boundary: str) -> None:
    x, y = _batch()
    elastic = ElasticArcFaceHead(D, C, margin=0.5, std=0.0, boundary=boundary)  # type: ignore[arg-type]
    arc = ArcFaceHead(D, C, margin=0.5, boundary=boundary)  # type: ignore[arg-type]
    _copy_weight(arc, elastic)
    torch.testing.assert_close(elastic(x, y), arc(x, y))
    elastic_plus = ElasticArcFaceHead(D, C, margin=0.5, std=0.0, plus=True, boundary=boundary)  # type: ignore[arg-type]
    _copy_weight(elastic_plus, elastic)
    torch.testing.assert_close(elastic_plus(x, y), arc(x, y))


def test_elastic_cosface_with_zero_std_is_cosface() -> None:
    x, y = _batch()
    elastic, cos = ElasticCosFaceHead(D, C, std=0.0, plus=True), CosFaceHead(D, C)
    _copy_weight(cos, elastic)
    torch.testing.assert_close(elastic(x, y), cos(x, y))


def test_elastic_defaults_follow_the_paper_configs() -> None:
    assert ElasticArcFaceHead(D, C).std == 0.05
    assert ElasticArcFaceHead(D, C, plus=True).std == 0.0175
    assert ElasticCosFaceHead(D, C).std == 0.05
    assert ElasticCosFaceHead(D, C, plus=True).std == 0.02
    assert ElasticArcFaceHead(D, C).margin == 0.5 and ElasticCosFaceHead(D, C).margin == 0.35


def test_elastic_margins_are_drawn_per_sample_around_the_mean() -> None:
    cos = torch.rand(20000)
    margins = elastic_margins(cos, 0.5, 0.05)
    assert abs(margins.mean().item() - 0.5) < 2e-3
    assert abs(margins.std().item() - 0.05) < 2e-3
    assert not torch.equal(margins, elastic_margins(cos, 0.5, 0.05))  # redrawn every call
    torch.manual_seed(3)
    first = elastic_margins(cos, 0.5, 0.05)
    torch.manual_seed(3)
    torch.testing.assert_close(first, elastic_margins(cos, 0.5, 0.05))  # deterministic under a seed


def test_elastic_plus_assignment_official_and_rank() -> None:
    cos = torch.tensor([0.1, 0.9, 0.5, 0.3, 0.7])
    margins = torch.tensor([0.50, 0.56, 0.44, 0.52, 0.47])
    official = assign_sorted_margins(cos, margins, "official_gather")
    torch.testing.assert_close(official, torch.tensor([0.47, 0.56, 0.50, 0.52, 0.44]))
    rank = assign_sorted_margins(cos, margins, "rank")
    torch.testing.assert_close(rank, torch.tensor([0.56, 0.44, 0.50, 0.52, 0.47]))
    for assigned in (official, rank):  # a permutation of the drawn margins
        torch.testing.assert_close(assigned.sort().values, margins.sort().values)


def test_elastic_margins_get_no_gradient_and_eval_is_deterministic() -> None:
    head = ElasticArcFaceHead(D, C, plus=True)
    x, y = _batch()
    x.requires_grad_(True)
    head(x, y).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    head.eval()
    torch.testing.assert_close(head(x, y), head(x, y))
    arc = ArcFaceHead(D, C, margin=0.5, boundary="none")
    _copy_weight(arc, head)
    torch.testing.assert_close(head(x, y), arc(x, y))  # eval mode uses the mean margin


def test_adaface_scaler_extremes() -> None:
    cos = torch.tensor([0.8, 0.2, -0.3], dtype=torch.float64)
    theta = torch.acos(cos)
    m = 0.4
    low = adaface_target(cos, torch.full_like(cos, -1.0), m)  # low quality: ArcFace
    torch.testing.assert_close(low, torch.cos(theta + m))
    mid = adaface_target(cos, torch.zeros_like(cos), m)  # average: CosFace
    torch.testing.assert_close(mid, cos - m)
    high = adaface_target(cos, torch.ones_like(cos), m)  # high quality: cos(theta - m) - 2m
    torch.testing.assert_close(high, torch.cos(theta - m) - 2 * m)


def test_adaface_h_zero_is_cosface() -> None:
    ada = AdaFaceHead(D, C, margin=0.4, h=0.0, scale=8)
    cos_head = CosFaceHead(D, C, margin=0.4, scale=8)
    _copy_weight(cos_head, ada)
    x, y = _batch()
    torch.testing.assert_close(ada(x, y), cos_head(x, y), rtol=2e-3, atol=2e-3)  # equal up to the eps clamps


def test_adaface_statistics_are_an_ema_updated_in_training_only() -> None:
    head = AdaFaceHead(D, C, t_alpha=0.01)
    x, y = _batch()
    norms = x.norm(dim=1)
    head(x, y)
    torch.testing.assert_close(head.batch_mean, 0.99 * torch.tensor(20.0) + 0.01 * norms.mean())
    torch.testing.assert_close(head.batch_std, 0.99 * torch.tensor(100.0) + 0.01 * norms.std())
    state = {k: v.clone() for k, v in head.state_dict().items()}
    assert {"batch_mean", "batch_std"} <= set(state)
    head.eval()
    head(x, y)
    torch.testing.assert_close(head.batch_mean, state["batch_mean"])
    head.train()
    head(x[:1], y[:1])  # a batch of one has no std: the std statistic is kept
    torch.testing.assert_close(head.batch_std, state["batch_std"])


def test_adaface_current_batch_statistics_with_t_alpha_one() -> None:
    head = AdaFaceHead(D, C, t_alpha=1.0)
    x, y = _batch()
    head(x, y)
    torch.testing.assert_close(head.batch_mean, x.norm(dim=1).mean())


# ---------------------------------------------------------------- gradients


def _all_heads(dtype: torch.dtype = torch.float64) -> list[MarginHead]:
    heads: list[MarginHead] = [
        SoftmaxHead(D, C),
        ArcFaceHead(D, C, scale=4),
        ArcFaceHead(D, C, scale=4, boundary="easy_margin"),
        ArcFaceHead(D, C, scale=4, gradient="straight_through"),
        CosFaceHead(D, C, scale=4),
        CombinedMarginHead(D, C, m1=1.5, m2=0.2, m3=0.1, scale=4),
        ElasticArcFaceHead(D, C, scale=4, plus=True),
        ElasticCosFaceHead(D, C, scale=4),
        AdaFaceHead(D, C, scale=4),
    ]
    return [head.to(dtype) for head in heads]


def _differentiable_heads() -> list[MarginHead]:
    """Heads whose gradient is the derivative of their value: not straight-through ArcFace (tested below)."""
    return [h for h in _all_heads() if getattr(h, "gradient", "exact") == "exact"]


@pytest.mark.parametrize("head", _differentiable_heads(), ids=lambda h: f"{type(h).__name__}")
def test_gradcheck_float64(head: MarginHead) -> None:
    x, y = _batch(torch.float64)
    weight = head.weight.detach().clone().requires_grad_(True)

    def loss(embeddings: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)  # ElasticFace redraws its margins: the same draw at every evaluation
        return torch.func.functional_call(head, {"weight": weight}, (embeddings, y), strict=False)

    if isinstance(head, AdaFaceHead):
        # The norm-based margin is detached by design (as the official code), so the embeddings' gradient
        # is not the full derivative: check the centres here and the target function with a fixed scaler.
        head.eval()
        assert torch.autograd.gradcheck(lambda w: loss(x, w), (weight,), eps=1e-6, atol=1e-5)
        cos, scaler = torch.rand(B, dtype=torch.float64).requires_grad_(True), torch.rand(B, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda c: adaface_target(c, scaler, 0.4), (cos,))
        return
    assert torch.autograd.gradcheck(loss, (x.requires_grad_(True), weight), eps=1e-6, atol=1e-5)


def test_arcface_exact_gradient_matches_the_analytic_derivative() -> None:
    cos = torch.tensor([0.6, -0.2, 0.05], dtype=torch.float64, requires_grad=True)
    m = 0.5
    arcface_target(cos, m, "none").sum().backward()
    theta = torch.acos(cos.detach())
    torch.testing.assert_close(cos.grad, torch.sin(theta + m) / torch.sin(theta))


def test_straight_through_has_the_same_value_and_the_plain_cosine_gradient() -> None:
    cos = torch.tensor([0.6, -0.2, 0.99], dtype=torch.float64, requires_grad=True)
    exact = arcface_target(cos, 0.5, "none", "exact")
    straight = arcface_target(cos, 0.5, "none", "straight_through")
    torch.testing.assert_close(straight, exact)
    straight.sum().backward()
    torch.testing.assert_close(cos.grad, torch.ones_like(cos))


# ---------------------------------------------------------------- extreme inputs


@pytest.mark.parametrize("head", _all_heads(torch.float32), ids=lambda h: f"{type(h).__name__}")
def test_cosine_exactly_plus_minus_one_gives_finite_values_and_gradients(head: MarginHead) -> None:
    y = torch.tensor([0, 1, 2])
    with torch.no_grad():
        head.weight.copy_(F.normalize(torch.randn(C, D), dim=1))
    x = torch.stack([head.weight[0], -head.weight[1], 1e6 * head.weight[2]]).detach().requires_grad_(True)
    loss = head(x, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(x.grad).all() and torch.isfinite(head.weight.grad).all()


@pytest.mark.parametrize("head", _all_heads(torch.float32), ids=lambda h: f"{type(h).__name__}")
def test_zero_and_huge_embeddings_stay_finite(head: MarginHead) -> None:
    x = torch.cat([torch.zeros(1, D), torch.full((1, D), 1e30), torch.full((1, D), -1e-30)]).requires_grad_(True)
    y = torch.tensor([0, 1, 2])
    loss = head(x, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_single_class_batch_is_fine() -> None:
    head = ArcFaceHead(D, C)
    x = torch.randn(4, D)
    assert torch.isfinite(head(x, torch.zeros(4, dtype=torch.long)))


@pytest.mark.parametrize("head_type", sorted(HEAD_TYPES))
def test_bf16_autocast_keeps_float32_centres_and_logits(head_type: str) -> None:
    head = build_head(head_type, D, C)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
    x, y = _batch()
    x = x.to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logits = head.loss_and_logits(x, y)
    assert loss.dtype == torch.float32 and logits.dtype == torch.float32
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert head.weight.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad.float()).all()


# ---------------------------------------------------------------- interface


def test_loss_and_logits_agree_with_forward_and_get_logits() -> None:
    head = CosFaceHead(D, C)
    x, y = _batch()
    loss, logits = head.loss_and_logits(x, y)
    torch.testing.assert_close(loss, head(x, y))
    torch.testing.assert_close(logits, head.get_logits(x))


def test_reduction_none_gives_per_sample_losses() -> None:
    x, y = _batch()
    mean_head = ArcFaceHead(D, C)
    none_head = ArcFaceHead(D, C, reduction="none")
    _copy_weight(none_head, mean_head)
    per_sample = none_head(x, y)
    assert per_sample.shape == (B,)
    torch.testing.assert_close(per_sample.mean(), mean_head(x, y))


def test_functional_twins_equal_the_modules() -> None:
    x, y = _batch()
    arc, cos = ArcFaceHead(D, C, margin=0.3, scale=10), CosFaceHead(D, C, margin=0.2, scale=10)
    torch.testing.assert_close(arcface_loss(x, arc.weight, y, margin=0.3, scale=10), arc(x, y))
    torch.testing.assert_close(cosface_loss(x, cos.weight, y, margin=0.2, scale=10), cos(x, y))


def test_centres_are_float32_and_shaped_like_a_linear_layer() -> None:
    for head_type in HEAD_TYPES:
        head = build_head(head_type, D, C)
        assert head.weight.dtype == torch.float32 and head.weight.shape == (C, D)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("embeddings", "labels", "error", "match"),
    [
        (torch.randn(3, D), torch.tensor([0, 1, C]), ValueError, r"`labels` must lie in \[0, 4\]"),
        (torch.randn(3, D), torch.tensor([0, -1, 2]), ValueError, r"`labels` must lie in"),
        (torch.randn(3, D), torch.tensor([0.0, 1.0, 2.0]), TypeError, "integer class indices"),
        (torch.randn(3, D), torch.tensor([0, 1]), ValueError, r"`labels` must have shape \(3,\)"),
        (torch.randn(3, D + 1), torch.tensor([0, 1, 2]), ValueError, r"must have shape \(batch, 8\)"),
        (torch.randn(3, 2, D), torch.tensor([0, 1, 2]), ValueError, r"`embeddings` must have shape \(batch, dim\)"),
        (torch.randn(0, D), torch.zeros(0, dtype=torch.long), ValueError, "empty batch"),
        (torch.ones(3, D, dtype=torch.long), torch.tensor([0, 1, 2]), TypeError, "floating-point"),
        ([[0.0] * D], torch.tensor([0]), TypeError, "must be a torch.Tensor"),
    ],
)
@pytest.mark.parametrize("head_type", sorted(HEAD_TYPES))
def test_bad_input_raises_a_clear_error(
    head_type: str, embeddings: object, labels: torch.Tensor, error: type[Exception], match: str
) -> None:
    head = build_head(head_type, D, C)
    with pytest.raises(error, match=match):
        head(embeddings, labels)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: ArcFaceHead(D, C, margin=28.6), r"math.radians\(28.6\)"),
        (lambda: ArcFaceHead(D, C, margin=-0.1), "`margin` must lie in"),
        (lambda: ArcFaceHead(D, C, boundary="sometimes"), "`boundary` must be one of"),  # type: ignore[arg-type]
        (lambda: ArcFaceHead(D, C, gradient="fast"), "`gradient` must be one of"),  # type: ignore[arg-type]
        (lambda: ArcFaceHead(D, C, scale=0), "`scale` must be a finite number > 0"),
        (lambda: ArcFaceHead(0, C), "`embedding_size` must be an integer >= 1"),
        (lambda: ArcFaceHead(D, 2.5), "`num_classes` must be an integer >= 1"),  # type: ignore[arg-type]
        (lambda: CosFaceHead(D, C, reduction="avg"), "`reduction` must be one of"),  # type: ignore[arg-type]
        (lambda: CombinedMarginHead(D, C, m1=2.0, boundary="threshold"), "must be 'none' when m1 != 1"),
        (lambda: ElasticArcFaceHead(D, C, std=-0.1), "`std` must lie in"),
        (lambda: ElasticCosFaceHead(D, C, plus_assignment="best"), "`plus_assignment`"),  # type: ignore[arg-type]
        (lambda: AdaFaceHead(D, C, t_alpha=1.5), "`t_alpha` must lie in"),
        (lambda: build_head("sphereface", D, C), "`head_type` must be one of"),
    ],
)
def test_bad_hyperparameters_raise_a_clear_error(factory: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()  # type: ignore[operator]


def test_bad_head_kwargs_name_the_head() -> None:
    with pytest.raises(TypeError, match="bad `head_kwargs` for head_type='cosface'"):
        build_head("cosface", D, C, m2=0.3)


# ---------------------------------------------------------------- issue 19: state, twins' checks, label dtypes


def _adaface_run(head: AdaFaceHead, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    return [head(x, y).detach() for x, y in batches]


@pytest.mark.parametrize("bad_value", [math.nan, math.inf, -math.inf])
def test_adaface_non_finite_batch_leaves_the_statistics_unchanged(bad_value: float) -> None:
    torch.manual_seed(0)
    finite = [_batch(), _batch()]
    bad = _batch()[0].clone()
    bad[2, 3] = bad_value
    poisoned, clean = AdaFaceHead(D, C, t_alpha=0.5), AdaFaceHead(D, C, t_alpha=0.5)
    _copy_weight(clean, poisoned)
    assert not torch.isfinite(poisoned(bad, finite[0][1]))  # the bad batch's loss says so: never plausible
    torch.testing.assert_close(poisoned.batch_mean, torch.tensor(AdaFaceHead.INITIAL_MEAN), rtol=0, atol=0)
    torch.testing.assert_close(poisoned.batch_std, torch.tensor(AdaFaceHead.INITIAL_STD), rtol=0, atol=0)
    # The following finite batches see the same state and give the same losses as if the bad one never came.
    for got, expected in zip(_adaface_run(poisoned, finite), _adaface_run(clean, finite), strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    saved = poisoned.state_dict()
    for name, value in clean.state_dict().items():
        assert torch.isfinite(saved[name]).all()
        torch.testing.assert_close(saved[name], value, rtol=0, atol=0)


def test_adaface_rejected_call_leaves_the_statistics_unchanged() -> None:
    head = AdaFaceHead(D, C, t_alpha=0.5)
    x, _ = _batch()
    with pytest.raises(ValueError, match="`labels` must lie in"):
        head(x, torch.full((B,), C))
    assert head.batch_mean.item() == AdaFaceHead.INITIAL_MEAN and head.batch_std.item() == AdaFaceHead.INITIAL_STD


@pytest.mark.parametrize("head_type", [ElasticArcFaceHead, ElasticCosFaceHead])
def test_elastic_rejected_call_draws_nothing_and_a_non_finite_batch_draws_as_a_finite_one(
    head_type: type[MarginHead],
) -> None:
    # ElasticFace keeps no state of its own; its margins come from torch's global generator, which a rejected
    # call must not advance, and which a batch advances by its size whatever its values (no host sync to skip).
    head = head_type(D, C, plus=True)
    x, y = _batch()
    rng = torch.get_rng_state()
    with pytest.raises(ValueError, match="`labels` must lie in"):
        head(x, torch.full((B,), C))
    assert torch.equal(torch.get_rng_state(), rng)
    bad = x.clone()
    bad[0, 0] = math.nan
    torch.manual_seed(3)
    assert not torch.isfinite(head(bad, y))
    after_bad = head(x, y)
    torch.manual_seed(3)
    head(x, y)
    torch.testing.assert_close(after_bad, head(x, y), rtol=0, atol=0)


# The hyperparameter values each twin must reject exactly as its class does (same error, same message).
TWIN_BAD_KWARGS: list[dict[str, object]] = [
    {"margin": 30.0},
    {"margin": -0.1},
    {"margin": "0.5"},
    {"margin": math.nan},
    {"scale": math.nan},
    {"scale": 0.0},
    {"scale": math.inf},
    {"scale": "64"},
    {"reduction": "avg"},
]


@pytest.mark.parametrize("kwargs", TWIN_BAD_KWARGS, ids=str)
@pytest.mark.parametrize(("head_type", "loss_fn"), [(ArcFaceHead, arcface_loss), (CosFaceHead, cosface_loss)])
def test_functional_twins_reject_what_their_heads_reject(
    head_type: type[MarginHead], loss_fn: object, kwargs: dict[str, object]
) -> None:
    x, y = _batch()
    with pytest.raises((ValueError, TypeError)) as from_head:
        head_type(D, C, **kwargs)
    assert f"`{next(iter(kwargs))}`" in str(from_head.value)
    with pytest.raises(from_head.type, match=re.escape(str(from_head.value))):
        loss_fn(x, torch.randn(C, D), y, **kwargs)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x, w, y: arcface_loss(x, w, y, boundary="sometimes"), ValueError, "`boundary` must be one of"),
        (lambda x, w, y: arcface_loss(x, w, y, gradient="fast"), ValueError, "`gradient` must be one of"),
        (lambda x, w, y: arcface_loss(x, w[0], y), ValueError, r"`weight` must have shape \(num_classes, dim\)"),
        (lambda x, w, y: cosface_loss(x, w[:0], y), ValueError, r"`weight` has no class centres"),
        (lambda x, w, y: cosface_loss(x, w.long(), y), TypeError, "`weight` must be a floating-point tensor"),
        (lambda x, w, y: cosface_loss(x, w.tolist(), y), TypeError, "`weight` must be a torch.Tensor"),
        (lambda x, w, y: cosine_matrix(x, w[0]), ValueError, r"`weight` must have shape \(num_classes, dim\)"),
        (lambda x, w, y: cosine_matrix(x[:, :2], w), ValueError, r"`embeddings` must have shape \(batch, 8\)"),
        (lambda x, w, y: arcface_target(x[:, 0], 30.0), ValueError, r"math.radians\(30.0\)"),
        (lambda x, w, y: arcface_target(x[:, 0], 0.5, boundary="x"), ValueError, "`boundary` must be one of"),
        (lambda x, w, y: cosface_target(x[:, 0], "0.3"), TypeError, "`margin` must be a real number"),
        (lambda x, w, y: combined_target(x[:, 0], 2.0, 0.5, 0.0, "threshold"), ValueError, "must be 'none'"),
        (lambda x, w, y: combined_target(x[:, 0], 1.0, 0.5, 5.0), ValueError, "`m3` must lie in"),
        (lambda x, w, y: adaface_target(x[:, 0], x[:, 1], margin=3.0), ValueError, "`margin` must lie in"),
        (lambda x, w, y: adaface_target(x[:, 0], x[:, 1], 0.4, eps=0.0), ValueError, "`eps` must be a finite"),
        (lambda x, w, y: adaface_margin_scaler(x[:, 0], x[0, 0], x[0, 1], h=-1.0), ValueError, "`h` must lie in"),
        (lambda x, w, y: elastic_margins(x[:, 0], 0.5, std=-0.1), ValueError, "`std` must lie in"),
        (lambda x, w, y: elastic_margins(x[:, 0], "0.5", 0.05), TypeError, "`mean` must be a real number"),
        (lambda x, w, y: elastic_margins(x[:, 0], 0.5, 0.05, True, "best"), ValueError, "`assignment` must be"),
    ],
)
def test_functional_building_blocks_check_their_arguments(call: object, error: type[Exception], match: str) -> None:
    x, y = _batch()
    with pytest.raises(error, match=match):
        call(x, torch.randn(C, D), y)  # type: ignore[operator]


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.uint8, torch.int64])
@pytest.mark.parametrize("head_type", sorted(HEAD_TYPES))
def test_every_head_accepts_any_integer_label_dtype(head_type: str, dtype: torch.dtype) -> None:
    head = build_head(head_type, D, C).eval()  # eval: ElasticFace's margins are not drawn
    x, y = _batch()
    torch.testing.assert_close(head(x, y.to(dtype)), head(x, y))
    torch.testing.assert_close(head.margin_logits(x, y.to(dtype)), head.margin_logits(x, y))


# Every numeric hyperparameter of every head, given as a string: a TypeError naming it and the expected type.
NUMERIC_HYPERPARAMETERS: list[tuple[type[MarginHead], str]] = [
    (ArcFaceHead, "margin"),
    (ArcFaceHead, "scale"),
    (CosFaceHead, "margin"),
    (CosFaceHead, "scale"),
    (CombinedMarginHead, "m1"),
    (CombinedMarginHead, "m2"),
    (CombinedMarginHead, "m3"),
    (CombinedMarginHead, "scale"),
    (ElasticArcFaceHead, "margin"),
    (ElasticArcFaceHead, "std"),
    (ElasticArcFaceHead, "scale"),
    (ElasticCosFaceHead, "margin"),
    (ElasticCosFaceHead, "std"),
    (ElasticCosFaceHead, "scale"),
    (AdaFaceHead, "margin"),
    (AdaFaceHead, "h"),
    (AdaFaceHead, "scale"),
    (AdaFaceHead, "t_alpha"),
    (AdaFaceHead, "eps"),
]


@pytest.mark.parametrize("value", ["0.5", True, [0.5]], ids=repr)
@pytest.mark.parametrize(("head_type", "name"), NUMERIC_HYPERPARAMETERS, ids=lambda v: getattr(v, "__name__", v))
def test_wrongly_typed_hyperparameters_raise_a_type_error_naming_them(
    head_type: type[MarginHead], name: str, value: object
) -> None:
    with pytest.raises(TypeError, match=f"`{name}` must be a real number"):
        head_type(D, C, **{name: value})


def test_adaface_clamps_every_cosine_as_the_official_code() -> None:
    # The official head clamps the whole cosine matrix to [-1 + eps, 1 - eps] before the margin; rows that
    # point exactly at another class's centre (cosine 1) or away from it (cosine -1) show the difference.
    head = AdaFaceHead(D, C, margin=0.4, h=0.0, scale=16, eps=1e-2).double()
    y = torch.tensor([0, 1, 2])
    x = torch.stack([head.weight[1], -head.weight[0] * 3, head.weight[4]]).detach().clone()
    eps, s = 1e-2, 16.0
    cos = (F.normalize(x, dim=1) @ F.normalize(head.weight, dim=1).t()).detach().clamp(-1 + eps, 1 - eps)
    theta_y = torch.acos(cos.gather(1, y[:, None]).squeeze(1)).clamp(eps, math.pi - eps)
    expected = s * cos.scatter(1, y[:, None], (torch.cos(theta_y) - 0.4)[:, None])  # h=0: CosFace-like target
    torch.testing.assert_close(head.margin_logits(x, y), expected)
    torch.testing.assert_close(head(x, y), F.cross_entropy(expected, y))


@pytest.mark.parametrize(
    "call",
    [
        lambda: ElasticArcFaceHead(D, C, plus="no"),
        lambda: ElasticCosFaceHead(D, C, plus=0),
        lambda: SoftmaxHead(D, C, bias="False"),
        lambda: elastic_margins(torch.zeros(3), 0.5, 0.05, plus="yes"),
    ],
)
def test_wrongly_typed_flags_raise_a_type_error_instead_of_reading_as_true(call: object) -> None:
    # bool("no") is True: a flag given as a string or number would silently switch a method on.
    with pytest.raises(TypeError, match=r"`(plus|bias)` must be a bool"):
        call()  # type: ignore[operator]
