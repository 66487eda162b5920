"""HypersphericalHead (arXiv 2102.03243): CosFace with m = 0, PML's NormalizedSoftmaxLoss, unit-norm class vectors
after an optimiser step, imprinting of new classes (joint and disjoint) and its errors, bf16 and extreme inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hf_margin.heads import HEAD_TYPES, CosFaceHead, HypersphericalHead, build_head

D, C = 6, 4


def _batch(n: int = 10, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, D, generator=g).to(dtype), torch.arange(n) % C


def test_neutral_case_equals_cosface_with_zero_margin_loss_gradients_and_logits() -> None:
    ours, cosface = HypersphericalHead(D, C, scale=10.0), CosFaceHead(D, C, margin=0.0, scale=10.0)
    with torch.no_grad():
        cosface.weight.copy_(ours.weight)
    x, y = _batch()
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    loss, reference = ours(x1, y), cosface(x2, y)
    loss.backward()
    reference.backward()
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(ours.weight.grad, cosface.weight.grad)
    torch.testing.assert_close(ours.get_logits(x), cosface.get_logits(x))
    assert HEAD_TYPES["hyperspherical"] is HypersphericalHead and ours.scale == HypersphericalHead(D, C).scale == 10.0
    assert not any("bias" in name for name, _ in ours.named_parameters()), "the bias is fixed at 0: no parameter"


def test_matches_pml_normalized_softmax_with_temperature_one_over_s() -> None:
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    head = HypersphericalHead(D, C, scale=10.0)
    head.project_()
    anchor = pml.NormalizedSoftmaxLoss(num_classes=C, embedding_size=D, temperature=0.1)
    with torch.no_grad():
        anchor.W.copy_(head.weight.t())
    x, y = _batch(dtype=torch.float32)
    torch.testing.assert_close(head(x, y), anchor(x, y), rtol=1e-5, atol=1e-6)


def test_project_after_an_optimizer_step_gives_unit_norm_and_the_projected_gradient_step() -> None:
    head = HypersphericalHead(D, C)
    head.project_()
    before = head.weight.detach().clone()
    optimizer = torch.optim.SGD(head.parameters(), lr=0.5)
    x, y = _batch()
    head(x, y).backward()
    step = before - 0.5 * head.weight.grad
    optimizer.step()
    assert not torch.allclose(head.weight.norm(dim=1), torch.ones(C)), "the raw step leaves the sphere"
    head.project_()
    torch.testing.assert_close(head.weight.norm(dim=1), torch.ones(C))
    torch.testing.assert_close(head.weight.detach(), F.normalize(step, dim=1))


def test_add_classes_imprints_without_changing_the_existing_logits() -> None:
    head = HypersphericalHead(D, C)
    x, _ = _batch()
    old_logits = head.get_logits(x)
    shots = torch.randn(5, D)
    labels = torch.tensor([C + 1, C, C, C + 1, C])
    new = head.add_classes(shots, labels)
    assert head.num_classes == C + 2 and head.weight.shape == (C + 2, D) and head.weight.requires_grad
    torch.testing.assert_close(new.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(new[0], F.normalize(F.normalize(shots[labels == C], dim=1).mean(0), dim=0))
    logits = head.get_logits(x)
    torch.testing.assert_close(logits[:, :C], old_logits)
    # A sample along a prototype has cosine 1: the largest logit possible, s.
    along = head.get_logits(3.0 * new[1:])
    assert along.argmax().item() == C + 1 and along[0, C + 1].item() == pytest.approx(head.scale)
    loss = head(x, torch.full((len(x),), C + 1))
    assert torch.isfinite(loss)


def test_from_embeddings_is_the_disjoint_head_of_the_imprinted_classes_only() -> None:
    shots, labels = torch.randn(6, D), torch.tensor([1, 0, 2, 2, 0, 1])
    head = HypersphericalHead.from_embeddings(shots, labels, scale=20.0)
    assert head.num_classes == 3 and head.scale == 20.0
    reference = HypersphericalHead(D, C)
    torch.testing.assert_close(head.weight.detach(), reference.add_classes(shots, labels + C))


@pytest.mark.parametrize(
    ("embeddings", "labels", "error", "match"),
    [
        (torch.randn(2, D), torch.tensor([1, C]), ValueError, r"existing classes \[1\]"),
        (torch.randn(2, D), torch.tensor([C, C + 2]), ValueError, rf"new class indices {C}..{C + 1}, none missing"),
        (torch.randn(2, D), torch.tensor([-1, C]), ValueError, "none missing"),
        (torch.randn(0, D), torch.zeros(0, dtype=torch.long), ValueError, "`embeddings` is an empty batch"),
        (torch.randn(2, D + 1), torch.tensor([C, C]), ValueError, "embeddings"),
        (torch.randn(2, D), torch.tensor([C]), ValueError, "labels"),
        (torch.randn(2, D), torch.tensor([4.0, 4.0]), TypeError, "labels"),
        (torch.tensor([[1.0] * D, [float("nan")] * D]), torch.tensor([C, C]), ValueError, "non-finite"),
        (torch.tensor([[1.0] * D, [-2.0] * D]), torch.tensor([C, C]), ValueError, "cancel out"),
    ],
)
def test_add_classes_rejects_bad_input_and_leaves_the_head_unchanged(
    embeddings: torch.Tensor, labels: torch.Tensor, error: type[Exception], match: str
) -> None:
    head = HypersphericalHead(D, C)
    before = head.weight.detach().clone()
    with pytest.raises(error, match=match):
        head.add_classes(embeddings, labels)
    assert head.num_classes == C and torch.equal(head.weight.detach(), before)


def test_bf16_autocast_and_extreme_inputs() -> None:
    head = build_head("hyperspherical", D, C, scale=64.0)
    x, y = _batch(dtype=torch.bfloat16)
    x.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = head(x, y)
    loss.backward()
    assert loss.dtype == torch.float32 and head.weight.dtype == torch.float32
    assert torch.isfinite(x.grad.float()).all() and torch.isfinite(head.weight.grad).all()
    on_centre = (head.weight.detach()[y] * 1e30).requires_grad_(True)  # cosines of exactly 1, huge norms
    head(on_centre, y).backward()
    assert torch.isfinite(on_centre.grad).all()
    head.add_classes(torch.full((1, D), 1e30), torch.tensor([C]))
    assert torch.isfinite(head.weight).all()


@pytest.mark.parametrize(
    ("kwargs", "error"), [({"scale": 0.0}, ValueError), ({"scale": "10"}, TypeError), ({"reduction": "x"}, ValueError)]
)
def test_bad_arguments_raise_naming_them(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        HypersphericalHead(D, C, **kwargs)
