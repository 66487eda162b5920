"""UNPGLoss on hf_margin's heads: the base head's loss when nothing is kept, >= it otherwise, a hand-written
reference, batch-order invariance, gradcheck, extremes and errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.heads import AdaFaceHead, ArcFaceHead, CombinedMarginHead, CosFaceHead, ElasticArcFaceHead, SoftmaxHead
from hf_margin.heads.base import MarginHead
from hf_margin.losses.unpg import UNPGLoss

D, C, B = 8, 5, 16


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g, dtype=torch.float64), torch.randint(0, C, (B,), generator=g)


HEADS = [
    lambda: ArcFaceHead(D, C, margin=0.5, scale=64.0),
    lambda: CosFaceHead(D, C, margin=0.5, scale=64.0),
    lambda: CombinedMarginHead(D, C, m1=1.0, m2=0.3, m3=0.1, scale=32.0),
    lambda: AdaFaceHead(D, C).eval(),
    lambda: ElasticArcFaceHead(D, C).eval(),
]


@pytest.mark.parametrize("make_head", HEADS)
def test_no_kept_negative_is_the_base_head_and_kept_ones_only_add(make_head) -> None:
    torch.manual_seed(0)
    head: MarginHead = make_head().double()
    x, y = batch()
    torch.testing.assert_close(UNPGLoss(head, whisker=-math.inf)(x, y), head(x, y), rtol=0, atol=0)
    one_class = torch.zeros(B, dtype=torch.long)
    torch.testing.assert_close(UNPGLoss(head)(x, one_class), head(x, one_class), rtol=0, atol=0)
    per_sample = UNPGLoss(head, reduction="none")(x, y)
    base = UNPGLoss(head, whisker=-math.inf, reduction="none")(x, y)
    assert (per_sample >= base).all() and (per_sample > base).any()


def test_matches_a_loop_reference_with_arcface() -> None:
    head = ArcFaceHead(D, C, margin=0.5, scale=64.0).double()
    x, y = batch(1)
    x_hat, w_hat = F.normalize(x, dim=1), F.normalize(head.weight.detach(), dim=1)
    negatives = sorted(float(x_hat[i] @ x_hat[j]) for i in range(B) for j in range(i + 1, B) if y[i] != y[j])
    q1, q3 = negatives[int(0.25 * len(negatives))], negatives[int(0.75 * len(negatives))]
    kept = [s for s in negatives if q1 - 1.5 * (q3 - q1) <= s <= q3 + 1.5 * (q3 - q1)]
    losses = []
    for i in range(B):
        cos = x_hat[i] @ w_hat.T
        psi = [math.cos(math.acos(float(c)) + 0.5) if j == y[i] else float(c) for j, c in enumerate(cos)]
        row = torch.tensor(psi + kept, dtype=torch.float64) * 64.0
        losses.append(-(row[y[i]] - torch.logsumexp(row, 0)))
    torch.testing.assert_close(UNPGLoss(head)(x, y), torch.stack(losses).mean().detach())


def test_filtered_set_and_losses_are_batch_order_invariant() -> None:
    loss = UNPGLoss(CosFaceHead(D, C).double(), reduction="none")
    x, y = batch(2)
    order = torch.randperm(B)
    kept = loss.kept_negatives(x, y).sort().values
    torch.testing.assert_close(loss.kept_negatives(x[order], y[order]).sort().values, kept)
    torch.testing.assert_close(loss(x[order], y[order]), loss(x, y)[order])


def test_gradcheck_embeddings_and_centres() -> None:
    loss = UNPGLoss(ArcFaceHead(D, C, margin=0.5, scale=8.0).double(), whisker=1.0)
    x, y = batch(3)
    weight = loss.head.weight.detach().clone().requires_grad_(True)

    def value(embeddings: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(loss, {"head.weight": centres}, (embeddings, y))

    assert torch.autograd.gradcheck(value, (x.requires_grad_(True), weight))


def test_extreme_inputs_stay_finite() -> None:
    head = ArcFaceHead(D, C, margin=0.5, scale=64.0)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    on_centres = F.normalize(head.weight.detach()[y], dim=1) * 1e4  # cos = 1 to the target, huge norm
    same_point = torch.ones(6, D)  # every negative pair at cos = 1
    for x in (on_centres, same_point, -on_centres):
        x = x.clone().requires_grad_(True)
        value = UNPGLoss(head, whisker=math.inf)(x, y)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all() and torch.isfinite(head.weight.grad).all()
        head.weight.grad = None


def test_bf16_autocast_computes_in_float32() -> None:
    head = CosFaceHead(D, C)
    x, y = batch(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = UNPGLoss(head)(x.bfloat16(), y)
    assert value.dtype == torch.float32 and head.weight.dtype == torch.float32
    torch.testing.assert_close(value, UNPGLoss(head)(x.bfloat16().float(), y))


def test_errors_name_the_argument() -> None:
    with pytest.raises(TypeError, match="`head`"):
        UNPGLoss(SoftmaxHead(D, C))
    with pytest.raises(TypeError, match="`head`"):
        UNPGLoss(torch.nn.Linear(D, C))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`whisker`"):
        UNPGLoss(ArcFaceHead(D, C), whisker=math.nan)
    with pytest.raises(ValueError, match="`reduction`"):
        UNPGLoss(ArcFaceHead(D, C), reduction="avg")  # type: ignore[arg-type]
    loss = UNPGLoss(ArcFaceHead(D, C))
    with pytest.raises(ValueError, match="`labels`"):
        loss(torch.randn(4, D), torch.tensor([0, 1, 2, C]))
    with pytest.raises(ValueError, match="`embeddings`"):
        loss(torch.randn(4, D + 1), torch.tensor([0, 1, 2, 3]))
