"""DomainSpecificHeads (DRM): loss routing, entropy head selection, online steering, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hf_margin.models.drm import DomainSpecificHeads


def _model(k: int = 2, c: int = 3) -> DomainSpecificHeads:
    torch.manual_seed(0)
    return DomainSpecificHeads(None, 4, num_labels=c, num_domains=k).double()


def test_loss_routes_each_sample_to_its_domain_head() -> None:
    model = _model()
    x = torch.randn(5, 4, dtype=torch.float64)
    y, d = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([0, 0, 1, 1, 1])
    logits = model(x)["head_logits"]
    ce = nn.functional.cross_entropy
    per_domain = [0.5 * (ce(logits[i][d == i], y[d == i]) + ce(logits[2][d == i], y[d == i])) for i in (0, 1)]
    torch.testing.assert_close(model(x, labels=y, domains=d)["loss"], torch.stack(per_domain).mean())
    model(x, labels=y, domains=d)["loss"].backward()
    assert model.heads[0].weight.grad is not None and model.heads[1].weight.grad is not None
    model.zero_grad()
    model(x[:2], labels=y[:2], domains=d[:2])["loss"].backward()  # only domain 0: head 1 gets no gradient
    assert model.heads[1].weight.grad is None or model.heads[1].weight.grad.abs().sum() == 0


def test_single_domain_with_identical_heads_is_erm() -> None:
    model = _model(k=1)
    model.heads[1].load_state_dict(model.heads[0].state_dict())
    x, y = torch.randn(6, 4, dtype=torch.float64), torch.randint(0, 3, (6,))
    out = model(x, labels=y, domains=torch.zeros(6, dtype=torch.long))
    torch.testing.assert_close(out["loss"], nn.functional.cross_entropy(model.heads[0](x), y))


def test_inference_picks_lowest_mean_entropy_head() -> None:
    model = _model()
    with torch.no_grad():
        for head, scale in zip(model.heads, (0.0, 5.0, 0.1), strict=True):  # head 0 uniform: max entropy
            head.weight.copy_(torch.eye(3, 4, dtype=torch.float64) * scale)
            head.bias.zero_()
    x = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]], dtype=torch.float64)
    out = model(x)
    assert int(out["selected_head"]) == 1
    torch.testing.assert_close(out["logits"], model.heads[1](x))


def test_steering_mixture_and_threshold() -> None:
    model = _model()
    x = torch.randn(4, 4, dtype=torch.float64)
    optimizer = torch.optim.SGD(model.heads.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    p = model.steer(x, optimizer, gamma=0.0, threshold=1.1)  # beta > 1: no update
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    probs = torch.softmax(model(x)["head_logits"], dim=-1)
    torch.testing.assert_close(p, probs[:2].sum(0) / 3)  # gamma = 0: uniform weights over K + 1, sum of K
    logits = model(x)["head_logits"]
    entropy = -(torch.softmax(logits, -1) * torch.log_softmax(logits, -1)).sum(-1)
    w = entropy**-2.0 / (entropy**-2.0).sum(0)
    torch.testing.assert_close(model.steer(x, optimizer, gamma=2.0, threshold=1.1), (w[:2, :, None] * probs[:2]).sum(0))
    pick = entropy.argmin(0)
    torch.testing.assert_close(model.steer(x, optimizer, gamma=-1.0, threshold=1.1), probs[pick, torch.arange(4)])
    p = model.steer(x, optimizer, gamma=1.0, threshold=0.0, confidence="probability")
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert torch.isfinite(p).all()


def test_steering_update_is_cross_entropy_on_pseudo_labels() -> None:
    model, reference = _model(), _model()
    x = torch.randn(5, 4, dtype=torch.float64)
    p = model.steer(x, torch.optim.SGD(model.parameters(), lr=0.5), gamma=1.0, threshold=0.0)
    logits = reference(x)["head_logits"]
    loss = sum(nn.functional.cross_entropy(logits[j], p.argmax(1)) for j in range(3))
    loss.backward()
    with torch.no_grad():
        for param in reference.parameters():
            param -= 0.5 * param.grad
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_extreme_logits_stay_finite() -> None:
    model = _model()
    with torch.no_grad():
        model.heads[0].weight.mul_(1e6)
    x = torch.randn(3, 4, dtype=torch.float64)
    assert torch.isfinite(model(x, labels=torch.tensor([0, 1, 2]), domains=torch.tensor([0, 1, 0]))["loss"])
    assert torch.isfinite(model.steer(x, torch.optim.SGD(model.parameters(), lr=0.0), gamma=5.0, threshold=1.1)).all()


def test_gradcheck() -> None:
    model = _model()
    y, d = torch.tensor([0, 2, 1]), torch.tensor([1, 0, 1])
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: model(v, labels=y, domains=d)["loss"], (x,))


def test_errors() -> None:
    model = _model()
    x = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="domains"):
        model(x, labels=torch.tensor([0, 1, 2]), domains=torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="domains"):
        model(x, labels=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels"):
        model(x, labels=torch.tensor([0, 1]), domains=torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="backbone"):
        model(torch.randn(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="num_domains"):
        DomainSpecificHeads(None, 4, 3, 0)
    with pytest.raises(ValueError, match="confidence"):
        model.steer(x, torch.optim.SGD(model.parameters(), lr=0.1), confidence="max")
