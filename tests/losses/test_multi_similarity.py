"""Multi-Similarity miner and loss: equal to pytorch-metric-learning 2.9.0 (value, gradients, mined pairs) on many
random batches, hinge limits, mining properties, gradcheck, bf16, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners

from hf_margin.functional._masked import masked_logsumexp
from hf_margin.functional.multi_similarity import log1p_sum_exp, multi_similarity_loss, multi_similarity_mine
from hf_margin.losses.metric_learning import pair_batch
from hf_margin.losses.multi_similarity import MultiSimilarityLoss, MultiSimilarityMiner
from hf_margin.losses.tcm import ThresholdConsistentMarginLoss
from hf_margin.losses.temperature_info_nce import TemperatureInfoNCELoss


def pair_set(first: torch.Tensor, second: torch.Tensor) -> list[tuple[int, int]]:
    return sorted(zip(first.tolist(), second.tolist(), strict=True))


def random_batch(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Batches of 2-19 rows over 1-7 classes: singleton classes, one-class batches (no negatives), all singletons
    (no positives) all occur."""
    rows = int(torch.randint(2, 20, (), generator=generator))
    classes = int(torch.randint(1, 8, (), generator=generator))
    embeddings = torch.randn(rows, 6, generator=generator, dtype=torch.float64)
    if int(torch.randint(0, 4, (), generator=generator)) == 0:
        classes = rows  # every class a singleton: no positive pair
        return embeddings, torch.randperm(rows, generator=generator)
    return embeddings, torch.randint(0, classes, (rows,), generator=generator)


def loss_and_grad(loss_fn, embeddings: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    x = embeddings.clone().requires_grad_()
    value = loss_fn(x, *args, **kwargs)
    value.backward()
    return value.detach(), (x.grad if x.grad is not None else torch.zeros_like(x))


def test_miner_and_loss_equal_pml_on_many_random_batches() -> None:
    generator = torch.Generator().manual_seed(1)
    compared = 0
    for _ in range(60):
        embeddings, labels = random_batch(generator)
        ours = MultiSimilarityMiner(0.1)(embeddings, labels)
        theirs = pml_miners.MultiSimilarityMiner(0.1)(embeddings, labels)
        assert pair_set(ours[0], ours[1]) == pair_set(theirs[0], theirs[1])
        assert pair_set(ours[2], ours[3]) == pair_set(theirs[2], theirs[3])
        cases = [(None, None)] + ([(ours, theirs)] if max(len(ours[0]), len(ours[2])) > 1 else [])
        for pairs, pml_pairs in cases:  # PML's early exit at <= 1 pair of each kind: see the dedicated test
            value, grad = loss_and_grad(MultiSimilarityLoss(), embeddings, labels, pairs)
            ref_value, ref_grad = loss_and_grad(pml_losses.MultiSimilarityLoss(), embeddings, labels, pml_pairs)
            torch.testing.assert_close(value, ref_value.to(value))
            torch.testing.assert_close(grad, ref_grad)
            compared += 1
    assert compared > 80


def test_equal_to_pml_with_other_hyperparameters_and_triplets() -> None:
    embeddings, labels = torch.randn(12, 5, dtype=torch.float64), torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 0])
    triplets = pml_miners.TripletMarginMiner(margin=0.5, type_of_triplets="all")(embeddings, labels)
    for options in ({"alpha": 2.0, "beta": 40.0, "base": 0.5}, {"alpha": 0.7, "beta": 3.0, "base": 1.0}):
        for pairs in (None, triplets):
            value, grad = loss_and_grad(MultiSimilarityLoss(**options), embeddings, labels, pairs)
            ref_value, ref_grad = loss_and_grad(pml_losses.MultiSimilarityLoss(**options), embeddings, labels, pairs)
            torch.testing.assert_close(value, ref_value.to(value))
            torch.testing.assert_close(grad, ref_grad)


def test_ref_emb_and_ref_labels_equal_pml() -> None:
    embeddings, labels = torch.randn(7, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 3, 3])
    ref, ref_labels = torch.randn(9, 4, dtype=torch.float64), torch.tensor([0, 0, 1, 2, 2, 3, 4, 4, 1])
    ours = MultiSimilarityMiner()(embeddings, labels, ref, ref_labels)
    theirs = pml_miners.MultiSimilarityMiner()(embeddings, labels, ref, ref_labels)
    assert pair_set(ours[0], ours[1]) == pair_set(theirs[0], theirs[1])
    assert pair_set(ours[2], ours[3]) == pair_set(theirs[2], theirs[3])
    for pairs in (None, ours):
        value, grad = loss_and_grad(MultiSimilarityLoss(), embeddings, labels, pairs, ref, ref_labels)
        ref_value, ref_grad = loss_and_grad(
            pml_losses.MultiSimilarityLoss(), embeddings, labels, pairs, ref, ref_labels
        )
        torch.testing.assert_close(value, ref_value)
        torch.testing.assert_close(grad, ref_grad)


def test_pml_returns_zero_for_a_single_pair_of_each_kind_ours_computes_it() -> None:
    embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    pairs = (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([2]))
    assert float(pml_losses.MultiSimilarityLoss()(embeddings, labels, pairs)) == 0.0
    expected = (
        0.5 * torch.log1p(torch.exp(torch.tensor(-2 * (0.6 - 0.5)))) + torch.log1p(torch.exp(torch.tensor(-25.0))) / 50
    ) / 3
    torch.testing.assert_close(MultiSimilarityLoss()(embeddings, labels, pairs).float(), expected.float())


def test_value_recomputed_by_hand() -> None:
    sim = torch.tensor([[1.0, 0.8, 0.3], [0.8, 1.0, 0.6], [0.3, 0.6, 1.0]], dtype=torch.float64)
    pos = torch.tensor([[False, True, False], [True, False, False], [False, False, False]])
    neg = torch.tensor([[False, False, True], [False, False, True], [True, True, False]])
    got = multi_similarity_loss(sim, pos, neg, alpha=2.0, beta=50.0, base=0.5)
    row0 = (
        0.5 * torch.log(1 + torch.exp(torch.tensor(-2 * 0.3))) + torch.log(1 + torch.exp(torch.tensor(50 * -0.2))) / 50
    )
    row1 = (
        0.5 * torch.log(1 + torch.exp(torch.tensor(-2 * 0.3))) + torch.log(1 + torch.exp(torch.tensor(50 * 0.1))) / 50
    )
    row2 = torch.log(1 + torch.exp(torch.tensor(50 * -0.2)) + torch.exp(torch.tensor(50 * 0.1))) / 50
    torch.testing.assert_close(got, torch.stack([row0, row1, row2]).double())


def test_mining_rules_by_hand() -> None:
    sim = torch.tensor([[0.9, 0.5, 0.45, 0.7, 0.2]])
    pos = torch.tensor([[True, True, False, False, False]])
    neg = ~pos
    hard_pos, hard_neg = multi_similarity_mine(sim, pos, neg, epsilon=0.1)
    # hardest positive 0.5: negatives above 0.4 kept (0.45, 0.7); hardest negative 0.7: positives below 0.8 kept
    assert hard_neg.tolist() == [[False, False, True, True, False]]
    assert hard_pos.tolist() == [[False, True, False, False, False]]


def test_permutation_invariance() -> None:
    embeddings, labels = torch.randn(16, 8, dtype=torch.float64), torch.randint(0, 4, (16,))
    order = torch.randperm(16)
    miner, loss_fn = MultiSimilarityMiner(), MultiSimilarityLoss()
    value = loss_fn(embeddings, labels, miner(embeddings, labels))
    permuted = loss_fn(embeddings[order], labels[order], miner(embeddings[order], labels[order]))
    torch.testing.assert_close(value, permuted)


def test_a_very_easy_negative_changes_nothing() -> None:
    embeddings = F.normalize(torch.randn(10, 4, dtype=torch.float64) + torch.tensor([3.0, 0, 0, 0]), dim=1)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    miner, loss_fn = MultiSimilarityMiner(), MultiSimilarityLoss(reduction="sum")
    value = loss_fn(embeddings, labels, miner(embeddings, labels))
    easy = torch.tensor([[-1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)  # cosine about -1 with every row
    more, more_labels = torch.cat([embeddings, easy]), torch.cat([labels, torch.tensor([9])])
    pairs = miner(more, more_labels)
    assert not (pairs[3] == 10).any() and not (pairs[2] == 10).any()
    torch.testing.assert_close(loss_fn(more, more_labels, pairs), value)


def test_large_alpha_beta_approach_the_hinge_limits() -> None:
    sim = torch.tensor([[0.2, 0.9, 0.65, 0.1], [0.3, 0.4, 0.45, 0.0]], dtype=torch.float64)
    pos = torch.tensor([[True, True, False, False], [True, True, False, False]])
    neg = ~pos
    big = multi_similarity_loss(sim, pos, neg, alpha=1e5, beta=1e5, base=0.5)
    hinge = (0.5 - sim.masked_fill(~pos, 9).amin(1)).clamp_min(0) + (sim.masked_fill(~neg, -9).amax(1) - 0.5).clamp_min(
        0
    )
    torch.testing.assert_close(big, hinge, atol=1e-4, rtol=0)


def test_masked_log1p_sum_exp_stable_and_empty_rows() -> None:
    values = torch.tensor([[1e4, 0.0], [-1e4, 3.0], [5.0, 6.0]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True], [True, False], [False, False]])
    out = log1p_sum_exp(values, mask)
    torch.testing.assert_close(out.detach(), torch.tensor([1e4, 0.0, 0.0], dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(values.grad).all() and values.grad[2].eq(0).all()


def test_extreme_inputs_stay_finite() -> None:
    same = torch.ones(6, 3, dtype=torch.float64, requires_grad=True)  # all cosines exactly 1
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    value = MultiSimilarityLoss(alpha=50, beta=500)(same, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(same.grad).all()
    tiny = torch.full((4, 3), 1e-30, requires_grad=True)
    MultiSimilarityLoss()(tiny, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(tiny.grad).all()


def test_no_pairs_gives_a_connected_zero() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    value = MultiSimilarityLoss()(x, torch.arange(4), MultiSimilarityMiner()(x, torch.arange(4)))
    assert float(value.detach()) == 0.0 and value.requires_grad
    value.backward()
    assert x.grad is not None and x.grad.eq(0).all()


def test_reductions() -> None:
    x, labels = torch.randn(8, 4), torch.randint(0, 3, (8,))
    rows = MultiSimilarityLoss(reduction="none")(x, labels)
    assert rows.shape == (8,)
    torch.testing.assert_close(MultiSimilarityLoss(reduction="sum")(x, labels), rows.sum())
    torch.testing.assert_close(MultiSimilarityLoss()(x, labels), rows.mean())


def test_gradcheck_float64() -> None:
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    pairs = MultiSimilarityMiner(epsilon=0.5)(x, labels)
    assert torch.autograd.gradcheck(lambda e: MultiSimilarityLoss(beta=5.0)(e, labels, pairs), (x,))


def test_bf16_input_computes_in_float32() -> None:
    x, labels = torch.randn(10, 8), torch.randint(0, 3, (10,))
    low = x.bfloat16().requires_grad_()
    value = MultiSimilarityLoss()(low, labels)
    assert value.dtype == torch.float32
    value.backward()
    assert low.grad is not None and low.grad.dtype == torch.bfloat16
    torch.testing.assert_close(value, MultiSimilarityLoss()(x.bfloat16().float(), labels))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: MultiSimilarityLoss(alpha=0), "alpha"),
        (lambda: MultiSimilarityLoss(beta=-1), "beta"),
        (lambda: MultiSimilarityLoss(reduction="avg"), "reduction"),
        (lambda: MultiSimilarityMiner(epsilon=-0.1), "epsilon"),
        (lambda: MultiSimilarityLoss()(torch.randn(4), torch.zeros(4, dtype=torch.long)), "embeddings"),
        (lambda: MultiSimilarityLoss()(torch.randn(4, 3), torch.zeros(5, dtype=torch.long)), r"labels.*\(4,\)"),
        (lambda: MultiSimilarityLoss()(torch.randn(4, 3)), "labels"),
        (lambda: MultiSimilarityLoss()(torch.randn(4, 3), torch.zeros(4), None), "integer"),
        (
            lambda: MultiSimilarityLoss()(torch.randn(4, 3), None, (torch.tensor([0]), torch.tensor([7]))),
            "indices_tuple",
        ),
        (
            lambda: MultiSimilarityLoss()(
                torch.randn(4, 3), None, (torch.tensor([0]), torch.tensor([9]), torch.tensor([1]))
            ),
            r"indices_tuple\[1\].*\[0, 3\]",
        ),
        (
            lambda: MultiSimilarityLoss()(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), None, torch.randn(5, 2)),
            r"ref_emb.*\(batch, 3\)",
        ),
        (
            lambda: MultiSimilarityLoss()(
                torch.randn(4, 3), torch.zeros(4, dtype=torch.long), None, None, torch.zeros(4, dtype=torch.long)
            ),
            "ref_labels",
        ),
        (
            lambda: multi_similarity_loss(torch.randn(3, 3), torch.ones(3, 3), torch.ones(3, 3, dtype=torch.bool)),
            "pos_mask",
        ),
    ],
)
def test_bad_input_is_rejected(call, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize(
    "make_loss",
    [MultiSimilarityLoss, ThresholdConsistentMarginLoss, lambda: TemperatureInfoNCELoss(temperature=0.1)],
)
def test_similarities_stay_float32_under_bf16_autocast(make_loss) -> None:
    g = torch.Generator().manual_seed(11)
    x, labels = torch.randn(16, 8, generator=g), torch.randint(0, 4, (16,), generator=g)
    loss_fn = make_loss()
    expected = loss_fn(x, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sim = pair_batch(x, labels).similarities()
        value = loss_fn(x, labels)
        mined = MultiSimilarityMiner()(x, labels)
    assert sim.dtype == torch.float32
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert [m.tolist() for m in mined] == [m.tolist() for m in MultiSimilarityMiner()(x, labels)]


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        ([0, 0, 1, 1], TypeError, r"`labels` must be a torch.Tensor"),
        (torch.tensor([0.0, 0.0, 1.0, 1.0]), TypeError, r"`labels` must hold integer labels"),
        (torch.tensor([True, True, False, False]), TypeError, r"`labels` must hold integer labels"),
        (torch.zeros(4, 1, dtype=torch.long), ValueError, r"`labels` must have shape \(4,\)"),
    ],
)
def test_labels_go_through_the_shared_check(labels, error, match: str) -> None:
    with pytest.raises(error, match=match):
        MultiSimilarityLoss()(torch.randn(4, 3), labels)
    with pytest.raises(error, match=match.replace("`labels`", "`ref_labels`")):
        MultiSimilarityLoss()(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), None, torch.randn(4, 3), labels)


def test_masked_logsumexp_is_log_sum_exp_over_the_mask_and_minus_inf_on_empty_rows() -> None:
    values = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True] * 5, [True, False, True, False, False], [False] * 5])
    out = masked_logsumexp(values, mask)
    torch.testing.assert_close(out[0], torch.logsumexp(values[0], 0))
    torch.testing.assert_close(out[1], torch.logsumexp(values[1, [0, 2]], 0))
    assert out[2] == float("-inf")
    torch.testing.assert_close(log1p_sum_exp(values, mask), F.softplus(out))
    out[:2].sum().backward()
    assert torch.isfinite(values.grad).all() and (values.grad[2] == 0).all() and (values.grad[1, [1, 3, 4]] == 0).all()


def test_mining_with_no_reference_rows_finds_no_pairs() -> None:
    """#19 item 3: an empty reference set mines nothing (instead of torch's amin() error)."""
    empty = torch.zeros(2, 0, dtype=torch.bool)
    hard_pos, hard_neg = multi_similarity_mine(torch.zeros(2, 0), empty, empty)
    assert hard_pos.shape == (2, 0) and hard_neg.shape == (2, 0)
