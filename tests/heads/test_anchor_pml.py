"""ArcFaceHead and CosFaceHead against pytorch-metric-learning 2.9 on identical inputs (its margin is in degrees
and its class matrix is (embedding_size, num_classes))."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.heads import ArcFaceHead, CosFaceHead, MarginHead

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

D, C, B = 16, 7, 32


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Random embeddings (the caller moves some next to or opposite their class centre)."""
    return torch.randn(B, D, dtype=torch.float64), torch.randint(0, C, (B,))


def _compare(ours: MarginHead, anchor: torch.nn.Module) -> None:
    with torch.no_grad():
        anchor.W.copy_(ours.weight.t())
    x, y = _inputs()
    with torch.no_grad():  # rows nearly opposite their centre (theta > pi - m) and nearly on it
        x[:4] = -ours.weight[y[:4]] * 3.0 + 1e-3 * torch.randn(4, D, dtype=torch.float64)
        x[4:6] = ours.weight[y[4:6]] + 1e-3 * torch.randn(2, D, dtype=torch.float64)
    x_ours, x_anchor = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    loss_ours, loss_anchor = ours(x_ours, y), anchor(x_anchor, y)
    loss_ours.backward()
    loss_anchor.backward()
    torch.testing.assert_close(loss_ours, loss_anchor, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(x_ours.grad, x_anchor.grad, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(ours.weight.grad, anchor.W.grad.t(), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(ours.get_logits(x), anchor.get_logits(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("degrees", [28.6, 10.0, 0.0])
def test_arcface_matches_pytorch_metric_learning(degrees: float) -> None:
    ours = ArcFaceHead(D, C, margin=math.radians(degrees), scale=64).double()
    anchor = pml_losses.ArcFaceLoss(num_classes=C, embedding_size=D, margin=degrees, scale=64).double()
    _compare(ours, anchor)


@pytest.mark.parametrize("margin", [0.35, 0.1])
def test_cosface_matches_pytorch_metric_learning(margin: float) -> None:
    ours = CosFaceHead(D, C, margin=margin, scale=64).double()
    anchor = pml_losses.CosFaceLoss(num_classes=C, embedding_size=D, margin=margin, scale=64).double()
    _compare(ours, anchor)


def test_pml_casts_its_centres_to_the_input_dtype_and_we_do_not() -> None:
    """The documented difference: PML turns W into bf16 for bf16 inputs; ours stays float32."""
    x, y = torch.randn(4, D).bfloat16(), torch.tensor([0, 1, 2, 3])
    anchor = pml_losses.ArcFaceLoss(num_classes=C, embedding_size=D)
    anchor(x, y)
    assert anchor.W.dtype == torch.bfloat16
    ours = ArcFaceHead(D, C)
    ours(x, y)
    assert ours.weight.dtype == torch.float32


def test_pml_arcface_gives_nan_at_cosine_one_where_ours_is_finite() -> None:
    anchor = pml_losses.ArcFaceLoss(num_classes=C, embedding_size=D)
    ours = ArcFaceHead(D, C, margin=math.radians(28.6))
    with torch.no_grad():
        anchor.W.copy_(F.normalize(ours.weight, dim=1).t())
    y = torch.tensor([0, 1])
    for head in (anchor, ours):
        x = F.normalize(ours.weight[y].detach(), dim=1).clone().requires_grad_(True)
        head(x, y).backward()
        finite = bool(torch.isfinite(x.grad).all())
        assert finite == (head is ours)
