"""Threshold-Consistent Margin loss: equal to pytorch-metric-learning 2.9.0 without ref_emb, PML 2.9.0's ref_emb
IndexError (ours supports it), the spec's properties, wrapping a base loss, gradcheck, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners

from hf_margin.functional.tcm import threshold_consistent_margin_loss
from hf_margin.losses.multi_similarity import MultiSimilarityLoss, MultiSimilarityMiner
from hf_margin.losses.tcm import ThresholdConsistentMarginLoss


def grad_of(loss_fn, embeddings: torch.Tensor, *args) -> tuple[torch.Tensor, torch.Tensor]:
    x = embeddings.clone().requires_grad_()
    value = loss_fn(x, *args)
    if value.requires_grad:
        value.backward()
    return value.detach(), (x.grad if x.grad is not None else torch.zeros_like(x))


@pytest.mark.parametrize(
    "options", [{}, {"lambda_plus": 0.3, "lambda_minus": 2.0, "margin_plus": 0.2, "margin_minus": 0.0}]
)
def test_equal_to_pml_without_ref_emb(options: dict) -> None:
    generator = torch.Generator().manual_seed(3)
    for _ in range(30):
        rows = int(torch.randint(2, 16, (), generator=generator))
        embeddings = torch.randn(rows, 5, generator=generator, dtype=torch.float64)
        labels = torch.randint(0, int(torch.randint(1, 6, (), generator=generator)), (rows,), generator=generator)
        mined = pml_miners.MultiSimilarityMiner(0.3)(embeddings, labels)
        for pairs in (None, mined):
            value, grad = grad_of(ThresholdConsistentMarginLoss(**options), embeddings, labels, pairs)
            ref_value, ref_grad = grad_of(
                pml_losses.ThresholdConsistentMarginLoss(**options), embeddings, labels, pairs
            )
            torch.testing.assert_close(value, torch.as_tensor(ref_value).to(value))
            torch.testing.assert_close(grad, ref_grad)


def test_pml_raises_with_ref_emb_ours_compares_rows_with_the_reference() -> None:
    embeddings, labels = torch.randn(3, 4, dtype=torch.float64), torch.tensor([0, 1, 2])
    ref, ref_labels = torch.randn(8, 4, dtype=torch.float64), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    with pytest.raises(IndexError):
        pml_losses.ThresholdConsistentMarginLoss()(embeddings, labels, None, ref, ref_labels)
    sim = F.normalize(embeddings, dim=1) @ F.normalize(ref, dim=1).T
    same = labels[:, None] == ref_labels[None]
    pos_hinge = 0.9 - sim[same & (sim <= 0.9)]
    neg_hinge = sim[~same & (sim >= 0.5)] - 0.5
    expected = (pos_hinge.mean() if pos_hinge.numel() else 0.0) + (neg_hinge.mean() if neg_hinge.numel() else 0.0)
    torch.testing.assert_close(
        ThresholdConsistentMarginLoss()(embeddings, labels, None, ref, ref_labels),
        torch.as_tensor(expected, dtype=torch.float64),
    )


def test_zero_when_no_hard_pairs_and_gradient_only_on_hard_pairs() -> None:
    sim = torch.tensor([[1.0, 0.95, 0.1, 0.6], [0.95, 1.0, 0.2, 0.3]], dtype=torch.float64, requires_grad=True)
    pos = torch.tensor([[False, True, False, False], [True, False, False, False]])
    neg = torch.tensor([[False, False, True, True], [False, False, True, True]])
    easy = threshold_consistent_margin_loss(sim, pos, neg & torch.tensor([[True, True, True, False]] * 2))
    assert float(easy.detach()) == 0.0
    value = threshold_consistent_margin_loss(sim, pos, neg)
    value.backward()
    assert torch.isclose(value.detach(), torch.tensor(0.1, dtype=torch.float64))  # the one hard negative 0.6
    expected = torch.zeros_like(sim)
    expected[0, 3] = 1.0
    torch.testing.assert_close(sim.grad, expected)


def test_average_over_hard_pairs_and_bounds() -> None:
    sim = torch.tensor([[0.5, 0.8, -1.0, 0.7, 1.0, 0.9]], dtype=torch.float64)
    pos = torch.tensor([[True, True, True, False, False, False]])
    value = threshold_consistent_margin_loss(sim, pos, ~pos, lambda_plus=2.0, lambda_minus=3.0)
    expected = 2.0 * (0.4 + 0.1 + 1.9) / 3 + 3.0 * (0.2 + 0.5 + 0.4) / 3
    torch.testing.assert_close(value, torch.tensor(expected, dtype=torch.float64))
    extreme = threshold_consistent_margin_loss(
        torch.tensor([[-1.0, 1.0]]), torch.tensor([[True, False]]), torch.tensor([[False, True]])
    )
    torch.testing.assert_close(
        extreme, torch.tensor((0.9 + 1.0) + (1.0 - 0.5))
    )  # the bounds lambda(m+ + 1), lambda(1 - m-)
    doubled = threshold_consistent_margin_loss(sim.repeat(1, 2), pos.repeat(1, 2), ~pos.repeat(1, 2), 2.0, 3.0)
    torch.testing.assert_close(doubled, value)  # scale-free in the number of hard pairs


def test_neutral_weights_leave_the_base_loss() -> None:
    x, labels = torch.randn(10, 6), torch.randint(0, 3, (10,))
    base = MultiSimilarityLoss()
    wrapped = ThresholdConsistentMarginLoss(lambda_plus=0.0, lambda_minus=0.0, base_loss=base)
    torch.testing.assert_close(wrapped(x, labels), base(x, labels))
    pairs = MultiSimilarityMiner()(x, labels)
    combined = ThresholdConsistentMarginLoss(base_loss=base)(x, labels, pairs)
    torch.testing.assert_close(combined, base(x, labels, pairs) + ThresholdConsistentMarginLoss()(x, labels, pairs))


def test_gradcheck_and_bf16() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda e: ThresholdConsistentMarginLoss(margin_plus=0.5, margin_minus=-0.2)(e, labels), (x,)
    )
    low = torch.randn(6, 4).bfloat16().requires_grad_()
    value = ThresholdConsistentMarginLoss()(low, labels)
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(low.grad.float()).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lambda_plus": -1.0}, "lambda_plus"),
        ({"lambda_minus": -0.1}, "lambda_minus"),
        ({"margin_plus": 1.5}, "margin_plus"),
        ({"margin_minus": -2.0}, "margin_minus"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ThresholdConsistentMarginLoss(**kwargs)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="labels"):
        ThresholdConsistentMarginLoss()(torch.randn(4, 3), torch.zeros(3, dtype=torch.long))


def test_hard_pairs_are_found_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import hf_margin.functional.tcm as functional_tcm
    import hf_margin.losses.tcm as module_tcm

    calls = []
    original = functional_tcm.tcm_hard_pairs

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(functional_tcm, "tcm_hard_pairs", counted)
    monkeypatch.setattr(module_tcm, "tcm_hard_pairs", counted)
    x, labels = torch.randn(10, 4), torch.randint(0, 3, (10,))
    value = ThresholdConsistentMarginLoss()(x, labels)
    assert len(calls) == 1
    sim = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    same = labels[:, None] == labels[None]
    torch.testing.assert_close(
        value, threshold_consistent_margin_loss(sim, same & ~torch.eye(10, dtype=torch.bool), ~same)
    )


def test_base_loss_gets_the_same_keyword_arguments() -> None:
    x, labels = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    ref, ref_labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    combined = ThresholdConsistentMarginLoss(base_loss=MultiSimilarityLoss())
    value = combined(x, labels=labels, ref_emb=ref, ref_labels=ref_labels)
    parts = MultiSimilarityLoss()(x, labels, None, ref, ref_labels) + ThresholdConsistentMarginLoss()(
        x, labels, None, ref, ref_labels
    )
    torch.testing.assert_close(value, parts)
