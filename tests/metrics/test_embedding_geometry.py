"""Uniformity (Wang & Isola 2020) and tolerance (Wang & Liu 2021): loop references, ranges, equality cases,
gradients and errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.metrics.embedding_geometry import tolerance, uniformity


def test_uniformity_matches_a_loop_reference_and_is_at_most_zero() -> None:
    x = torch.randn(7, 5, dtype=torch.float64)
    unit = F.normalize(x, dim=1)
    terms = [math.exp(-2 * float((unit[i] - unit[j]).pow(2).sum())) for i in range(7) for j in range(i + 1, 7)]
    assert uniformity(x).item() == pytest.approx(math.log(sum(terms) / len(terms)), rel=1e-12)
    raw = [math.exp(-0.5 * float((x[i] - x[j]).pow(2).sum())) for i in range(7) for j in range(i + 1, 7)]
    assert uniformity(x, t=0.5, normalize=False).item() == pytest.approx(math.log(sum(raw) / len(raw)), rel=1e-12)
    assert uniformity(x) < 0


def test_uniformity_is_zero_iff_all_embeddings_coincide() -> None:
    same = torch.tensor([[3.0, 4.0]]).repeat(5, 1)
    assert uniformity(same).item() == 0.0
    assert uniformity(torch.cat([same, torch.tensor([[4.0, 3.0]])])) < 0
    # Spread evenly on the circle is more uniform than clustered near one point.
    angles = torch.linspace(0, 2 * math.pi, 13)[:-1]
    circle = torch.stack([angles.cos(), angles.sin()], 1)
    assert uniformity(circle) < uniformity(circle * torch.tensor([1.0, 0.1]) + torch.tensor([1.0, 0.0]))


def test_tolerance_is_the_mean_same_class_cosine_in_range() -> None:
    x = torch.randn(8, 4, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 1, 2, 0, 3, 1])
    cos = F.cosine_similarity(x.unsqueeze(1), x.unsqueeze(0), dim=-1)
    pairs = [float(cos[i, j]) for i in range(8) for j in range(i + 1, 8) if labels[i] == labels[j]]
    assert tolerance(x, labels).item() == pytest.approx(sum(pairs) / len(pairs), rel=1e-12)
    v = torch.tensor([[1.0, 0.0]])
    assert tolerance(torch.cat([v, 2 * v, -v, -3 * v]), torch.tensor([0, 0, 1, 1])).item() == pytest.approx(1.0)
    assert tolerance(torch.cat([v, -v]), torch.tensor([0, 0])).item() == pytest.approx(-1.0)


def test_both_are_differentiable_and_finite_at_extremes() -> None:
    x = torch.zeros(4, 3, requires_grad=True)  # zero vectors normalise to zero: no NaN
    (uniformity(x) + tolerance(x, torch.tensor([0, 0, 1, 1]))).backward()
    assert torch.isfinite(x.grad).all()
    y = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e: uniformity(e), (y,))
    assert torch.autograd.gradcheck(lambda e: tolerance(e, torch.tensor([0, 0, 1, 1, 1])), (y,))


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="`embeddings`"):
        uniformity(torch.randn(1, 3))
    with pytest.raises(ValueError, match="`t`"):
        uniformity(torch.randn(3, 3), t=0.0)
    with pytest.raises(ValueError, match="`labels`"):
        tolerance(torch.randn(3, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="`labels` must hold integer labels"):
        tolerance(torch.randn(3, 3), torch.tensor([0.0, 0.0, 1.0]))


def test_uniformity_uses_pairwise_distances_without_row_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(40, 16, dtype=torch.float64)
    unit = F.normalize(x, dim=1)
    squared = (unit.unsqueeze(1) - unit.unsqueeze(0)).pow(2).sum(-1)
    upper = squared[torch.ones(40, 40, dtype=torch.bool).triu(1)]
    expected = torch.logsumexp(-2 * upper, 0) - math.log(upper.numel())
    torch.testing.assert_close(uniformity(x), expected)

    def refuse(*args, **kwargs):
        raise AssertionError("index pairs copy the rows: (P, D) memory")

    monkeypatch.setattr(torch, "triu_indices", refuse)  # the old (N^2/2, D) path indexed rows with it
    torch.testing.assert_close(uniformity(x), expected)
    torch.testing.assert_close(tolerance(x, torch.arange(8).repeat(5)), tolerance(x.flip(0), torch.arange(8).repeat(5)))


@pytest.mark.parametrize("labels", [[0, 0, 1], torch.tensor([True, True, False])])
def test_tolerance_labels_must_be_an_integer_tensor(labels) -> None:
    with pytest.raises(TypeError, match="`labels`"):
        tolerance(torch.randn(3, 3), labels)
