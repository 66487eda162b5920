"""Proto-Triplet and ICNN (arXiv 2305.09062): the spec's properties, slow loop references of the official
description against the vectorised functions, gradcheck, extremes and errors."""

from __future__ import annotations

import math

import pytest
import torch

from hf_margin.functional.few_shot import (
    class_prototypes,
    icnn_loss,
    icnn_score,
    proto_triplet_loss,
    prototype_logits,
)


def episode(seed: int = 0, ways: int = 3, shots: int = 2, queries: int = 3, dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    support_y = torch.arange(ways).repeat_interleave(shots) * 10  # labels need not be 0..K-1
    query_y = torch.arange(ways).repeat_interleave(queries) * 10
    return (
        torch.randn(ways * shots, dim, generator=g, dtype=torch.float64),
        support_y,
        torch.randn(ways * queries, dim, generator=g, dtype=torch.float64),
        query_y,
    )


def proto_triplet_reference(support, support_y, queries, query_y, margin=0.5):
    classes = sorted(set(support_y.tolist()))
    protos = {c: support[support_y == c].mean(0) for c in classes}
    losses = []
    for q, y in zip(queries, query_y.tolist(), strict=True):
        d = {c: math.sqrt(float(((q - protos[c]) ** 2).sum()) + 1e-6) for c in classes}
        losses.append(max(0.0, d[y] - min(v for c, v in d.items() if c != y) + margin))
    return sum(losses) / len(losses)


def test_prototypes_and_protonet_logits() -> None:
    support, support_y, queries, _ = episode()
    classes, prototypes = class_prototypes(support, support_y)
    assert classes.tolist() == [0, 10, 20]
    torch.testing.assert_close(prototypes[1], support[2:4].mean(0))
    torch.testing.assert_close(prototype_logits(queries, prototypes, 2.0), -(torch.cdist(queries, prototypes) ** 2) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proto_triplet_matches_the_loop_reference(seed: int) -> None:
    support, support_y, queries, query_y = episode(seed)
    value = proto_triplet_loss(support, support_y, queries, query_y)
    assert value.item() == pytest.approx(proto_triplet_reference(support, support_y, queries, query_y), rel=1e-12)
    assert value > 0


def test_proto_triplet_is_zero_when_every_query_is_closer_by_the_margin() -> None:
    support = torch.tensor([[0.0, 0.0], [0.2, 0.0], [3.0, 0.0], [3.2, 0.0]])
    support_y = torch.tensor([0, 0, 1, 1])
    queries = torch.tensor([[0.1, 0.3], [3.1, -0.3]])  # 0.3 from its prototype, 3.01 from the other
    assert proto_triplet_loss(support, support_y, queries, torch.tensor([0, 1])) == 0
    assert proto_triplet_loss(support, support_y, queries, torch.tensor([0, 1]), margin=2.8) > 0


def icnn_reference(points, labels, ref=None, ref_labels=None, k=4, ipc=None, drop_nearest=True):
    """The official description, row by row with python lists (no clamp: the test sizes keep k + 2 < |T|)."""
    own = ref is None
    ref, ref_labels = (points, labels) if own else (ref, ref_labels)
    ipc = k + 1 if ipc is None else ipc
    rows = []
    for i, x in enumerate(points):
        candidates = sorted(
            (float(((x - t) ** 2).sum().sqrt()), int(ref_labels[j])) for j, t in enumerate(ref) if not (own and j == i)
        )
        if not own and drop_nearest:
            candidates = candidates[1:]
        rows.append(candidates[:ipc])
    nd_terms, dc_rows, same_counts = [], [], []
    global_dc_max = max(
        [d for row, y in zip(rows, labels.tolist(), strict=True) for d, c in row[:k] if c != y], default=0.0
    )
    for row, y in zip(rows, labels.tolist(), strict=True):
        nn_dc = min([d for d, c in row if c != y], default=math.inf)
        nd = [d / nn_dc for d, _ in row[:k]]
        nd = [v / max(1.0, max(nd)) for v in nd]
        same = [c == y for _, c in row[:k]]
        same_counts.append(sum(same))
        if any(same):
            nd_terms.append(sum(v for v, s in zip(nd, same, strict=True) if s) / sum(same))
        if not all(same):
            dc_rows.append(
                sum(d / global_dc_max for (d, _), s in zip(row[:k], same, strict=True) if not s) / (k - sum(same))
            )
    lambda_sc = 1 - (sum(nd_terms) / len(nd_terms) if nd_terms else 0.0)
    lambda_dc = abs((sum(dc_rows) / len(dc_rows) if dc_rows else 0.0) + (0.0 if dc_rows else -1.0))
    gamma = sum(c / k for c in same_counts) / len(same_counts)
    return ((lambda_sc + lambda_dc) / 2 + gamma) / 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_icnn_matches_the_loop_reference(seed: int) -> None:
    support, support_y, queries, query_y = episode(seed, ways=3, shots=4, queries=3)
    points, labels = torch.cat([support, queries]), torch.cat([support_y, query_y])
    assert icnn_score(points, labels).item() == pytest.approx(icnn_reference(points, labels), rel=1e-12)
    assert icnn_score(points, labels, k=3, ipc=6).item() == pytest.approx(
        icnn_reference(points, labels, k=3, ipc=6), rel=1e-12
    )
    for drop in (True, False):
        ours = icnn_score(queries, query_y, support, support_y, k=3, drop_nearest=drop)
        assert ours.item() == pytest.approx(
            icnn_reference(queries, query_y, support, support_y, 3, None, drop), rel=1e-12
        )


def test_icnn_score_is_one_iff_neighbours_are_same_class_at_zero_distance() -> None:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = torch.arange(3).repeat_interleave(6)
    points = centres.repeat_interleave(6, dim=0)
    assert icnn_score(points, labels, k=4).item() == 1.0
    assert icnn_loss(points, labels, k=4).item() == 0.0
    noise = 0.5 * torch.randn(18, 2, generator=torch.Generator().manual_seed(0))
    # Six per class: all ipc = 5 neighbours are same-class, nn_dc = inf, so the normalised distances are 0.
    assert icnn_score(points + noise, labels, k=4).item() == 1.0
    # Five per class: the fifth neighbour is of another class, and the same-class distances count.
    five = torch.cat([torch.arange(i * 6, i * 6 + 5) for i in range(3)])
    assert 0.9 < icnn_score((points + noise)[five], labels[five], k=4).item() < 1.0
    assert icnn_score(points[five], labels[five], k=4).item() == 1.0
    mixed = labels[torch.randperm(18, generator=torch.Generator().manual_seed(1))]
    assert icnn_score(points, mixed, k=4) < 0.9


def test_icnn_is_invariant_to_a_global_scale() -> None:
    support, support_y, queries, query_y = episode(5, shots=4)
    points, labels = torch.cat([support, queries]), torch.cat([support_y, query_y])
    for scale in (1e-3, 7.0, 1e4):
        torch.testing.assert_close(icnn_score(points * scale, labels), icnn_score(points, labels))
        torch.testing.assert_close(
            icnn_score(queries * scale, query_y, support * scale, support_y, k=3),
            icnn_score(queries, query_y, support, support_y, k=3),
        )


def test_official_k_clamp_and_the_strict_option() -> None:
    points = torch.tensor([[0.0], [1.0], [10.0], [11.0], [12.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1])
    # k = 4 with |T| = 5: the official code uses k = 3 and gamma = 1. With k = 3 proper, the same-class counts
    # among the 3 nearest are 1, 1, 2, 2, 2: gamma = 8/15, and the score is lower by (1 - 8/15) / 2.
    clamped = icnn_score(points, labels, k=4)
    strict = icnn_score(points, labels, k=3, ipc=3, clamp_k=False)
    torch.testing.assert_close(clamped - icnn_score(points, labels, k=3, ipc=3), torch.tensor(0.0, dtype=torch.float64))
    torch.testing.assert_close(clamped - strict, torch.tensor(7 / 30, dtype=torch.float64))
    with pytest.raises(ValueError, match="`k`"):
        icnn_score(points, labels, k=4, clamp_k=False)


def test_gradcheck() -> None:
    support, support_y, queries, query_y = episode(6, shots=4)
    support.requires_grad_(True)
    queries.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda s, q: proto_triplet_loss(s, support_y, q, query_y, margin=1.0), (support, queries)
    )
    points, labels = torch.cat([support, queries]).detach().requires_grad_(True), torch.cat([support_y, query_y])
    assert torch.autograd.gradcheck(lambda p: icnn_loss(p, labels), (points,))
    assert torch.autograd.gradcheck(lambda q: icnn_loss(q, query_y, support.detach(), support_y, k=3), (queries,))


def test_extreme_inputs_stay_finite() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    for points in (torch.zeros(6, 3), torch.full((6, 3), 1e15), torch.cat([torch.zeros(3, 3), torch.ones(3, 3)])):
        points = points.clone().requires_grad_(True)
        value = icnn_loss(points, labels, k=3) + proto_triplet_loss(points[::2], labels[::2], points, labels)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(points.grad).all()


def test_errors_name_the_argument() -> None:
    support, support_y, queries, query_y = episode()
    with pytest.raises(ValueError, match=r"`query_labels`.*without support"):
        proto_triplet_loss(support, support_y, queries, query_y + 1)
    with pytest.raises(ValueError, match=r"`support_labels`.*two classes"):
        proto_triplet_loss(support[:2], support_y[:2], queries[:1], query_y[:1])
    with pytest.raises(ValueError, match="`margin`"):
        proto_triplet_loss(support, support_y, queries, query_y, margin=-1.0)
    with pytest.raises(ValueError, match="`queries`"):
        proto_triplet_loss(support, support_y, queries[:, :2], query_y)
    with pytest.raises(TypeError, match="`support_labels`"):
        proto_triplet_loss(support, support_y.float(), queries, query_y)
    with pytest.raises(ValueError, match="`k`"):
        icnn_score(queries, query_y, k=0)
    with pytest.raises(ValueError, match="`k`"):
        icnn_score(queries[:3], query_y[:3], k=1, ipc=5)
    with pytest.raises(ValueError, match="`reference_labels`"):
        icnn_score(queries, query_y, support)
    with pytest.raises(ValueError, match="`reference`"):
        icnn_score(queries, query_y, support[:, :2], support_y)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (lambda y: y.tolist(), TypeError),
        (lambda y: y > 0, TypeError),
        (lambda y: y.double(), TypeError),
        (lambda y: y[:-1], ValueError),
    ],
)
def test_every_label_argument_goes_through_the_shared_check(bad, error) -> None:
    support, support_y, queries, query_y = episode()
    calls = {
        "support_labels": lambda: class_prototypes(support, bad(support_y)),
        "query_labels": lambda: proto_triplet_loss(support, support_y, queries, bad(query_y)),
        "labels": lambda: icnn_score(queries, bad(query_y)),
        "reference_labels": lambda: icnn_score(queries, query_y, support, bad(support_y)),
    }
    for name, call in calls.items():
        with pytest.raises(error, match=f"`{name}`"):
            call()


def test_prototype_logits_in_float32_and_checked_arguments() -> None:
    """#19 items 2, 3: float16 embeddings far apart give finite (float32) logits; shapes and eps are checked."""
    queries, prototypes = (
        torch.full((2, 4), 300.0, dtype=torch.float16),
        torch.full((3, 4), -300.0, dtype=torch.float16),
    )
    logits = prototype_logits(queries, prototypes)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="`queries`"):
        prototype_logits(torch.zeros(2, 3, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="`prototypes`"):
        prototype_logits(torch.zeros(2, 4), torch.zeros(3, 5))
    support, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    for bad, error in (("0.5", TypeError), (float("nan"), ValueError)):
        with pytest.raises(error, match="`eps`"):
            proto_triplet_loss(support, labels, support, labels, eps=bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_icnn_on_non_finite_points_is_non_finite(bad: float) -> None:
    """#19 item 3: nearest-neighbour ranks would hide a NaN/inf point behind a plausible score; it is NaN instead."""
    points, labels = torch.randn(8, 3), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    points[1, 0] = bad
    assert torch.isnan(icnn_score(points, labels, k=2))
    assert torch.isnan(icnn_loss(points, labels, k=2))
