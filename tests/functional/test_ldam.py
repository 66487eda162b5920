"""LDAM margins and losses (multi-label TransICD, single-label Cao et al.) and DRW's effective-number weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.ldam import effective_number_weights, ldam_loss, ldam_margins, multilabel_ldam_loss
from hf_margin.losses import LDAMLoss, MultiLabelLDAMLoss


def multilabel_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randint(0, 2, (6, 4), generator=g)


def test_c_zero_is_bce_with_logits() -> None:
    logits, targets = multilabel_batch()
    margins = ldam_margins([10, 5, 0, 1000], c=0.0)
    loss = multilabel_ldam_loss(logits, targets, margins)
    torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(logits, targets.double()))


def test_margin_moves_only_positive_logits() -> None:
    logits, targets = multilabel_batch()
    margins = ldam_margins([10, 5, 0, 1000], c=3.0)
    leaf = logits.clone().requires_grad_()
    multilabel_ldam_loss(leaf, targets, margins, reduction="sum").backward()
    plain = logits.clone().requires_grad_()
    F.binary_cross_entropy_with_logits(plain, targets.double(), reduction="sum").backward()
    negatives = targets == 0
    torch.testing.assert_close(leaf.grad[negatives], plain.grad[negatives])
    assert (leaf.grad[~negatives] < plain.grad[~negatives]).all(), "positives get a larger push up"
    shifted = logits - targets * margins.double()
    torch.testing.assert_close(
        multilabel_ldam_loss(logits, targets, margins), F.binary_cross_entropy_with_logits(shifted, targets.double())
    )


def test_margins_follow_the_quarter_power() -> None:
    margins = ldam_margins([1, 16, 81, 10_000], c=3.0)
    assert float(margins[1] / margins[0]) == pytest.approx(0.5)
    assert float(margins[2] / margins[0]) == pytest.approx(1 / 3)
    assert (margins.diff() < 0).all(), "rarer labels get larger margins"
    normalised = ldam_margins([5000, 500, 50, 5], max_m=0.5)
    assert float(normalised.max()) == pytest.approx(0.5) and int(normalised.argmax()) == 3


def test_zero_counts_stay_finite() -> None:
    margins = ldam_margins([0, 0, 3], c=3.0)
    assert torch.isfinite(margins).all() and float(margins[0]) == 3.0
    weights = effective_number_weights([0, 5, 5000])
    assert torch.isfinite(weights).all()
    logits = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    loss = multilabel_ldam_loss(logits, torch.tensor([[1, 0, 1]]), margins)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_single_label_ldam_reduces_to_cross_entropy() -> None:
    g = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(8, 5, generator=g), torch.randint(0, 5, (8,), generator=g)
    zero = torch.zeros(5)
    torch.testing.assert_close(ldam_loss(logits, labels, zero, scale=1.0), F.cross_entropy(logits, labels))
    margins = ldam_margins([100, 50, 20, 5, 1], max_m=0.5)
    shifted = logits - F.one_hot(labels, 5) * margins
    torch.testing.assert_close(ldam_loss(logits, labels, margins, scale=30.0), F.cross_entropy(30 * shifted, labels))


def test_effective_number_weights() -> None:
    counts = [5000, 500, 50, 5]
    weights = effective_number_weights(counts, 0.9999)
    assert float(weights.sum()) == pytest.approx(4.0)
    assert (weights.diff() > 0).all(), "rarer classes weigh more"
    torch.testing.assert_close(effective_number_weights(counts, 0.0), torch.ones(4))
    expected = torch.tensor([(1 - 0.999) / (1 - 0.999**n) for n in counts])
    torch.testing.assert_close(effective_number_weights(counts, 0.999), expected * 4 / expected.sum())


def test_gradcheck() -> None:
    logits, targets = multilabel_batch()
    margins = ldam_margins([3, 30, 300, 3000], c=3.0)
    assert torch.autograd.gradcheck(lambda z: multilabel_ldam_loss(z, targets, margins), (logits.requires_grad_(),))
    labels = targets.argmax(1)
    single = ldam_margins([3, 30, 300, 3000], max_m=0.5)
    assert torch.autograd.gradcheck(lambda z: ldam_loss(z, labels, single, scale=5.0), (logits,))


def test_modules_and_deferred_weights() -> None:
    loss = MultiLabelLDAMLoss([100, 10, 1], c=3.0)
    logits, targets = torch.randn(4, 3), torch.randint(0, 2, (4, 3))
    before = loss(logits, targets)
    loss.set_deferred_weights(0.9999)
    assert float(loss.class_weights.sum()) == pytest.approx(3.0)
    loss.set_deferred_weights(None)
    torch.testing.assert_close(loss(logits, targets), before)
    single = LDAMLoss([100, 10, 1], max_m=0.5, scale=30.0)
    assert torch.isfinite(single(torch.randn(4, 3), torch.tensor([0, 1, 2, 2])))
    assert "margins" in loss.state_dict(), "margins and DRW weights are saved with the model"


def test_bad_input_names_the_argument() -> None:
    margins = ldam_margins([1, 2, 3], c=1.0)
    with pytest.raises(ValueError, match=r"`targets` must be a \(batch, num_labels\)"):
        multilabel_ldam_loss(torch.zeros(2, 3), torch.zeros(2, 4), margins)
    with pytest.raises(ValueError, match="only 0 and 1"):
        multilabel_ldam_loss(torch.zeros(2, 3), torch.full((2, 3), 2), margins)
    with pytest.raises(ValueError, match="`margins` must have shape"):
        multilabel_ldam_loss(torch.zeros(2, 4), torch.zeros(2, 4), margins)
    with pytest.raises(ValueError, match="exactly one of `c`"):
        ldam_margins([1, 2], c=1.0, max_m=0.5)
    with pytest.raises(ValueError, match="`class_counts`"):
        ldam_margins([1, -2], c=1.0)
    with pytest.raises(ValueError, match="`labels`"):
        ldam_loss(torch.zeros(2, 3), torch.tensor([0, 3]), margins)


def test_empty_batches_bad_reductions_and_wrong_types_name_the_argument() -> None:
    """#19 items 2 and 5: an empty batch raises naming `logits` (not torch's `min()` error or a NaN); the functions
    check `reduction` and `scale` as the modules do; wrongly typed settings are TypeErrors naming the argument."""
    margins = ldam_margins([5, 2, 1], max_m=0.5)
    empty, no_labels = torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)
    with pytest.raises(ValueError, match=r"`logits`.*empty"):
        ldam_loss(empty, no_labels, margins)
    with pytest.raises(ValueError, match=r"`logits`.*empty"):
        LDAMLoss([5, 2, 1])(empty, no_labels)
    with pytest.raises(ValueError, match=r"`logits`.*empty"):
        multilabel_ldam_loss(empty, torch.zeros(0, 3), margins)
    with pytest.raises(ValueError, match=r"`logits`.*empty"):
        MultiLabelLDAMLoss([5, 2, 1])(empty, torch.zeros(0, 3))
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="`reduction`"):
        ldam_loss(logits, labels, margins, reduction="avg")
    with pytest.raises(ValueError, match="`reduction`"):
        multilabel_ldam_loss(logits, torch.zeros(4, 3), margins, reduction="avg")
    with pytest.raises(ValueError, match="`scale`"):
        ldam_loss(logits, labels, margins, scale=float("nan"))
    with pytest.raises(ValueError, match="`scale`"):
        LDAMLoss([5, 2, 1], scale=0.0)
    with pytest.raises(TypeError, match="`scale`"):
        LDAMLoss([5, 2, 1], scale="30")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`max_m`"):
        LDAMLoss([5, 2, 1], max_m="0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`c`"):
        MultiLabelLDAMLoss([5, 2, 1], c="3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`logits`"):
        ldam_loss(logits.long(), labels, margins)
    size_one = ldam_loss(torch.tensor([[1e4, -1e4, 0.0]]), torch.tensor([1]), margins)
    assert torch.isfinite(size_one)
