"""UNPG's math: the negative pairs, the index-based box-and-whisker filter, the appended-columns cross-entropy
against a full logits matrix built by hand, gradcheck and extremes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.margin_heads import cosface_target
from hf_margin.functional.unpg import box_and_whisker_mask, negative_pair_cosines, unpg_cross_entropy


def test_negative_pairs_are_the_upper_triangle_of_different_labels() -> None:
    x = torch.randn(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 2, 1, 0])
    expected = [F.cosine_similarity(x[i], x[j], dim=0) for i in range(6) for j in range(i + 1, 6) if y[i] != y[j]]
    torch.testing.assert_close(negative_pair_cosines(x, y), torch.stack(expected))
    assert negative_pair_cosines(x, torch.zeros(6, dtype=torch.long)).numel() == 0


def test_quartiles_are_index_based_not_interpolated() -> None:
    values = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 2.0], dtype=torch.float64)
    # l = 7: Q1 = sorted[int(1.75)] = 0.1, Q3 = sorted[int(5.25)] = 0.5 (torch.quantile would give 0.15 and 0.45).
    q1, q3 = 0.1, 0.5
    for whisker in (0.0, 0.5, 1.5, 3.75):
        low, high = q1 - whisker * (q3 - q1), q3 + whisker * (q3 - q1)
        expected = (values >= low) & (values <= high)
        assert torch.equal(box_and_whisker_mask(values[torch.randperm(7)].sort().values, whisker), expected)
    # whisker 0 keeps [Q1, Q3] = [0.1, 0.5]; interpolated quartiles would keep [0.15, 0.45] and drop 0.1 and 0.5.
    assert box_and_whisker_mask(values, 0.0).tolist() == [False, True, True, True, True, True, False]


def test_whisker_limits_and_empty_input() -> None:
    values = torch.tensor([0.3, 0.3, 0.3, -0.9])
    assert box_and_whisker_mask(values, float("inf")).all()
    assert not box_and_whisker_mask(values, float("-inf")).any()
    assert box_and_whisker_mask(values, 1.5).tolist() == [True, True, True, False], "IQR = 0 keeps the median only"
    assert box_and_whisker_mask(torch.zeros(0), 1.5).numel() == 0


def _full_matrix_reference(cosine, target, labels, negatives, scale):
    logits = cosine.clone()
    logits[torch.arange(len(labels)), labels] = target
    logits = torch.cat([logits, negatives.expand(len(labels), -1)], dim=1) * scale
    return F.cross_entropy(logits, labels, reduction="none")


def test_equals_cross_entropy_over_the_appended_matrix() -> None:
    g = torch.Generator().manual_seed(0)
    cosine = torch.rand(5, 4, generator=g, dtype=torch.float64) * 2 - 1
    labels = torch.tensor([0, 1, 3, 3, 2])
    target = cosface_target(cosine[torch.arange(5), labels], 0.35)
    negatives = torch.rand(9, generator=g, dtype=torch.float64) * 2 - 1
    for scale in (1.0, 30.0, 64.0):
        ours = unpg_cross_entropy(cosine, target, labels, negatives, scale, "none")
        torch.testing.assert_close(ours, _full_matrix_reference(cosine, target, labels, negatives, scale))
        base = unpg_cross_entropy(cosine, target, labels, negatives[:0], scale, "none")
        assert (ours > base).all()
    weight = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    reference = _full_matrix_reference(cosine, target, labels, negatives, 64.0)
    weighted = unpg_cross_entropy(cosine, target, labels, negatives, 64.0, sample_weight=weight)
    torch.testing.assert_close(weighted, (reference * weight).mean())


def test_gradcheck() -> None:
    g = torch.Generator().manual_seed(1)
    cosine = (torch.rand(4, 3, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    target = (torch.rand(4, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    negatives = (torch.rand(6, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    labels = torch.tensor([0, 2, 1, 1])
    assert torch.autograd.gradcheck(
        lambda c, t, n: unpg_cross_entropy(c, t, labels, n, 8.0), (cosine, target, negatives)
    )


def test_extreme_inputs_stay_finite() -> None:
    cosine = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], requires_grad=True)
    target = torch.tensor([-1.0, -1.0], requires_grad=True)  # the worst possible target
    negatives = torch.ones(500, requires_grad=True)  # many negatives at cos = 1
    loss = unpg_cross_entropy(cosine, target, torch.tensor([0, 1]), negatives, 64.0)
    loss.backward()
    assert torch.isfinite(loss) and loss > 128
    assert all(torch.isfinite(t.grad).all() for t in (cosine, target, negatives))


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="`whisker`"):
        box_and_whisker_mask(torch.zeros(3), math.nan)
    with pytest.raises(ValueError, match="`values`"):
        box_and_whisker_mask(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="`negatives`"):
        unpg_cross_entropy(torch.zeros(2, 2), torch.zeros(2), torch.tensor([0, 1]), torch.zeros(2, 2), 1.0)
    with pytest.raises(ValueError, match="`labels`"):
        negative_pair_cosines(torch.zeros(3, 2), torch.tensor([0, 1]))


@pytest.mark.parametrize(
    ("labels", "error"),
    [([0, 1, 0], TypeError), (torch.tensor([0.0, 1.0, 0.0]), TypeError), (torch.tensor([[0, 1, 0]]), ValueError)],
)
def test_labels_are_checked_before_use(labels, error) -> None:
    with pytest.raises(error, match="`labels`"):
        negative_pair_cosines(torch.randn(3, 2), labels)


def test_negative_pair_cosines_stay_float32_under_bf16_autocast() -> None:
    x, y = torch.randn(12, 6), torch.randint(0, 3, (12,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cosines = negative_pair_cosines(x, y)
    assert cosines.dtype == torch.float32
    torch.testing.assert_close(cosines, negative_pair_cosines(x, y))


def test_unpg_cross_entropy_checks_cosine_and_labels() -> None:
    """#19 items 2, 3, 5: an empty batch, integer or 3-D cosines and out-of-range labels raise naming the argument."""
    negatives = torch.rand(3)
    with pytest.raises(ValueError, match=r"`cosine`.*empty"):
        unpg_cross_entropy(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), negatives, 8.0)
    with pytest.raises(TypeError, match="`cosine`"):
        unpg_cross_entropy(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2), torch.tensor([0, 1]), negatives, 8.0)
    with pytest.raises(ValueError, match="`labels`"):
        unpg_cross_entropy(torch.zeros(2, 4), torch.zeros(2), torch.tensor([0, 9]), negatives, 8.0)
