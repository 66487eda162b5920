"""The InfoNCE core: base case, focal weight, filter rule, mixing, distillation, gradcheck, extremes, errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.contrastive import (
    InfoNCEOptions,
    false_negative_mask,
    focal_weight,
    labelled_pair_cosines,
    margin_info_nce,
    mix_negatives,
    pairwise_mixing_weights,
    similarity_matrix,
    similarity_mixing_weights,
    upper_triangle,
)


def batch(b: int = 6, m: int = 3, d: int = 8, seed: int = 0, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, d, generator=g, dtype=dtype)
    docs = [torch.randn(b, d, generator=g, dtype=dtype) for _ in range(1 + m)]
    return q, docs


def reference_info_nce(q, docs, scale=20.0, extra=None):
    """Hand-written InfoNCE: each query against all positives and hard negatives, plus optional extra logits."""
    logits = scale * similarity_matrix(q, torch.cat(docs))
    if extra is not None:
        logits = torch.cat([logits, extra], 1)
    return F.cross_entropy(logits, torch.arange(q.shape[0]))


def test_all_parts_off_is_infonce() -> None:
    q, docs = batch()
    out = margin_info_nce(q, docs)
    torch.testing.assert_close(out.loss, reference_info_nce(q, docs))
    assert out.filtered_share == 0 and out.mean_focal_weight == 1


def test_symmetric_averages_both_directions() -> None:
    q, docs = batch()
    out = margin_info_nce(q, docs, InfoNCEOptions(symmetric=True))
    backward = F.cross_entropy(20 * similarity_matrix(docs[0], q), torch.arange(q.shape[0]))
    torch.testing.assert_close(out.loss, (reference_info_nce(q, docs) + backward) / 2)


def test_focal_weight_properties() -> None:
    log_p = torch.linspace(-8, -1e-6, 50)
    for gamma in (0.5, 1.0, 2.0):
        w = focal_weight(log_p, gamma)
        assert ((w >= 0) & (w <= 1)).all()
        assert (w.diff() <= 0).all(), "the focal weight decreases as p grows"
        torch.testing.assert_close(w, (1 - log_p.exp()) ** gamma)
    assert torch.equal(focal_weight(log_p, 0.0), torch.ones_like(log_p))
    easy, hard = torch.tensor([-0.01]), torch.tensor([-3.0])
    ratios = [float(focal_weight(easy, g) / focal_weight(hard, g)) for g in (1.0, 2.0, 4.0)]
    assert ratios[0] > ratios[1] > ratios[2], "easy samples shrink faster than hard ones as gamma grows"


def test_focal_loss_value_and_detach_option() -> None:
    q, docs = batch()
    logits = 20 * similarity_matrix(q, torch.cat(docs))
    log_p = logits.log_softmax(1).diagonal()
    expected = -((1 - log_p.exp()) ** 2 * log_p).mean()
    torch.testing.assert_close(margin_info_nce(q, docs, InfoNCEOptions(focal_gamma=2.0)).loss, expected)

    grads = []
    for detach in (False, True):
        leaf = q.clone().requires_grad_()
        margin_info_nce(leaf, docs, InfoNCEOptions(focal_gamma=2.0, focal_detach=detach)).loss.backward()
        grads.append(leaf.grad)
    leaf = q.clone().requires_grad_()
    weight = ((1 - log_p.exp()) ** 2).detach()
    logits = 20 * similarity_matrix(leaf, torch.cat(docs))
    (-(weight * logits.log_softmax(1).diagonal()).mean()).backward()
    torch.testing.assert_close(grads[1], leaf.grad)
    assert not torch.allclose(grads[0], grads[1]), "the undetached focal weight is differentiated"


def test_focal_normalize_gives_weights_of_mean_one() -> None:
    q, docs = batch()
    log_p = (20 * similarity_matrix(q, torch.cat(docs))).log_softmax(1).diagonal()
    weight = (1 - log_p.exp()) ** 2
    out = margin_info_nce(q, docs, InfoNCEOptions(focal_gamma=2.0, focal_normalize=True))
    torch.testing.assert_close(out.loss, -(weight * log_p).sum() / weight.sum())
    torch.testing.assert_close(out.mean_focal_weight, weight.mean()), "the logged weight stays the raw mean"
    plain = margin_info_nce(q, docs, InfoNCEOptions(focal_normalize=True)).loss
    torch.testing.assert_close(plain, reference_info_nce(q, docs)), "gamma 0: InfoNCE"

    grads = {}
    for normalize in (False, True):
        leaf = q.clone().requires_grad_()
        options = InfoNCEOptions(focal_gamma=2.0, focal_detach=True, focal_normalize=normalize)
        margin_info_nce(leaf, docs, options).loss.backward()
        grads[normalize] = leaf.grad
    torch.testing.assert_close(grads[True], grads[False] / weight.mean()), "the step is rescaled by 1 / mean weight"


def test_filter_rule_including_negative_positive_scores() -> None:
    pos = torch.tensor([[0.8], [-0.2]])
    scores = torch.tensor([[0.75, 0.7599, 0.7601, 0.9], [-0.25, -0.2101, -0.2099, -0.195]])
    relative = false_negative_mask(pos, scores, "relative", 0.05)
    # keep iff s < s_p - |s_p| 0.05: 0.76 for 0.8 and -0.21 for -0.2
    assert relative.tolist() == [[False, False, True, True], [False, False, True, True]]
    literal_product_keeps = scores[1] < 0.95 * pos[1]
    assert literal_product_keeps[3], "0.95 x a negative positive would keep -0.195 > -0.2 (documented)"
    absolute = false_negative_mask(pos, scores - torch.tensor([[0.1], [0.0]]), "absolute", 0.1)
    assert absolute.tolist() == [[False, False, False, True], [True, True, True, True]]
    for strategy in ("relative", "absolute"):
        assert false_negative_mask(pos, pos + 0.0, strategy, 0.0).all(), "a score >= the positive's is never kept"


def test_filter_is_monotone_in_the_margin() -> None:
    g = torch.Generator().manual_seed(1)
    pos, scores = torch.rand(20, 1, generator=g) * 2 - 1, torch.rand(20, 30, generator=g) * 2 - 1
    for strategy in ("relative", "absolute"):
        kept = [~false_negative_mask(pos, scores, strategy, m) for m in (0.0, 0.05, 0.2, 0.5)]
        for looser, stricter in itertools.pairwise(kept):
            assert (stricter <= looser).all(), "a larger margin keeps a subset"


def test_filtering_removes_exactly_the_flagged_logits() -> None:
    q, docs = batch(b=5, m=2)
    docs[1][0] = q[0] * 3  # query 0's first hard negative is its duplicate: a false negative
    opts = InfoNCEOptions(filter_strategy="relative", filter_margin=0.05)
    out = margin_info_nce(q, docs, opts)
    scores = similarity_matrix(q, torch.cat(docs))
    drop = false_negative_mask(scores.diagonal()[:, None], scores, "relative", 0.05)
    drop.fill_diagonal_(False)
    assert drop[0, 5], "the duplicate is flagged"
    logits = (20 * scores).masked_fill(drop, -math.inf)
    torch.testing.assert_close(out.loss, F.cross_entropy(logits, torch.arange(5)))
    negatives = ~torch.eye(5, 15, dtype=torch.bool)
    assert math.isclose(float(out.filtered_share), float(drop[negatives].float().mean()))


def test_guide_scores_drive_the_filter() -> None:
    q, docs = batch(b=4, m=1)
    guide_q, guide_docs = batch(b=4, m=1, seed=7)
    opts = InfoNCEOptions(filter_strategy="absolute", filter_margin=0.1)
    guided = margin_info_nce(q, docs, opts, guide_queries=guide_q, guide_documents=guide_docs)
    guide = similarity_matrix(guide_q, torch.cat(guide_docs))
    drop = false_negative_mask(guide.diagonal()[:, None], guide, "absolute", 0.1)
    drop.fill_diagonal_(False)
    assert drop.any() and not drop.all()
    logits = (20 * similarity_matrix(q, torch.cat(docs))).masked_fill(drop, -math.inf)
    torch.testing.assert_close(guided.loss, F.cross_entropy(logits, torch.arange(4)))


def test_pairwise_mixing_lambda_one_reproduces_a_negative() -> None:
    g = torch.Generator().manual_seed(0)
    keep = torch.ones(4, 3, dtype=torch.bool)
    weights = pairwise_mixing_weights(keep, 5, lam=1.0, generator=g)
    negatives = F.normalize(torch.randn(4, 3, 8), dim=-1)
    mixed = mix_negatives(weights, negatives)
    chosen = weights.argmax(-1)
    torch.testing.assert_close(mixed, negatives.gather(1, chosen[..., None].expand(-1, -1, 8)))


def test_mixing_with_lambda_one_equals_infonce_with_the_negative_duplicated() -> None:
    q, docs = batch(b=4, m=2)
    g = torch.Generator().manual_seed(3)
    opts = InfoNCEOptions(mixing="pairwise", num_mixed=1, mix_lambda=1.0)
    out = margin_info_nce(q, docs, opts, generator=g)
    weights = pairwise_mixing_weights(torch.ones(4, 2, dtype=torch.bool), 1, 1.0, torch.Generator().manual_seed(3))
    copies = torch.stack(docs[1:], 1).gather(1, weights.argmax(-1)[..., None].expand(-1, -1, 8))
    extra = 20 * F.cosine_similarity(q[:, None], copies, dim=-1)
    torch.testing.assert_close(out.loss, reference_info_nce(q, docs, extra=extra))


def test_mixed_negatives_are_unit_norm_and_convex() -> None:
    keep = torch.tensor([[True, True, False, True], [True, False, False, False], [False] * 4])
    weights = pairwise_mixing_weights(keep, 6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 6))
    assert (weights[0][:, 2] == 0).all(), "a filtered negative is never mixed"
    assert (weights[1][:, 0] == 1).all(), "one kept negative: the mix is that negative"
    two = weights[0][(weights[0] > 0).sum(-1) == 2]
    assert len(two) and ((two > 0) & (two < 1)).any()
    negatives = F.normalize(torch.randn(3, 4, 5), dim=-1)
    torch.testing.assert_close(mix_negatives(weights, negatives).norm(dim=-1), torch.ones(3, 6))


def test_beta22_lambdas_have_the_right_moments() -> None:
    keep = torch.ones(20000, 2, dtype=torch.bool)
    weights = pairwise_mixing_weights(keep, 1, generator=torch.Generator().manual_seed(0))
    first = weights[:, 0, 0]
    assert abs(float(first.mean()) - 0.5) < 0.01
    assert abs(float(first.var()) - 0.05) < 0.004, "Beta(2, 2) has variance 1/20"


def test_similarity_mixing_weights_are_the_softmax_over_kept() -> None:
    scores = torch.tensor([[0.1, 0.5, 0.3], [0.2, 0.2, 0.9]])
    keep = torch.tensor([[True, True, False], [False, False, False]])
    weights = similarity_mixing_weights(scores, keep, 0.1)
    torch.testing.assert_close(weights[0, 0], torch.tensor([0.1, 0.5, -math.inf]).div(0.1).softmax(-1))
    assert torch.isfinite(weights).all()


def test_similarity_mixing_adds_one_negative_per_query() -> None:
    q, docs = batch(b=3, m=2)
    opts = InfoNCEOptions(mixing="similarity", mix_temperature=0.05)
    hard = torch.stack(docs[1:], 1)
    w = similarity_mixing_weights(
        torch.einsum("bd,bmd->bm", F.normalize(q, dim=-1), F.normalize(hard, dim=-1)),
        torch.ones(3, 2, dtype=torch.bool),
        0.05,
    )
    extra = 20 * F.cosine_similarity(q[:, None], mix_negatives(w, hard), dim=-1)
    torch.testing.assert_close(margin_info_nce(q, docs, opts).loss, reference_info_nce(q, docs, extra=extra))


def test_adding_negatives_never_lowers_the_loss_without_focal() -> None:
    q, docs = batch(b=6, m=3)
    base = margin_info_nce(q, docs[:2]).loss
    more = margin_info_nce(q, docs).loss
    mixed = margin_info_nce(q, docs, InfoNCEOptions(mixing="pairwise", num_mixed=4), generator=torch.Generator())
    assert base <= more <= mixed.loss


def test_distillation_term_is_the_kl_to_the_teacher() -> None:
    q, docs = batch(b=4, m=2)
    teacher = torch.randn(4, 3)
    opts = InfoNCEOptions(distill_weight=0.5, teacher_temperature=0.1)
    out = margin_info_nce(q, docs, opts, teacher_scores=teacher)
    own = torch.stack([F.cosine_similarity(q, d, dim=-1) for d in docs], 1) * 20
    kl = (F.softmax(teacher / 0.1, -1) * (F.log_softmax(teacher / 0.1, -1) - F.log_softmax(own, -1))).sum(-1).mean()
    torch.testing.assert_close(out.loss, reference_info_nce(q, docs) + 0.5 * kl)
    zero = margin_info_nce(q, docs, opts, teacher_scores=own / 20 * 2)  # teacher equal to the student: KL 0
    torch.testing.assert_close(zero.loss, reference_info_nce(q, docs), atol=1e-5, rtol=0)


def test_gather_offset_uses_only_local_rows() -> None:
    q, docs = batch(b=8, m=1)
    full = margin_info_nce(q, docs)
    halves = [margin_info_nce(q, docs, offset=o, batch_size=4).loss for o in (0, 4)]
    torch.testing.assert_close((halves[0] + halves[1]) / 2, full.loss)


def test_gradcheck_all_parts_on() -> None:
    q, docs = batch(b=4, m=2, d=5, dtype=torch.float64)
    q.requires_grad_()
    for d in docs:
        d.requires_grad_()
    opts = InfoNCEOptions(
        symmetric=True,
        focal_gamma=2.0,
        filter_strategy="relative",
        mixing="pairwise",
        num_mixed=2,
        mix_lambda=0.3,
        mix_gradient=True,
        distill_weight=0.5,
    )
    teacher = torch.randn(4, 3, dtype=torch.float64)

    def loss(q, *docs):
        out = margin_info_nce(q, list(docs), opts, teacher_scores=teacher, generator=torch.Generator().manual_seed(0))
        return out.loss

    assert torch.autograd.gradcheck(loss, (q, *docs))


@pytest.mark.parametrize("scale", [1.0, 20.0, 1e4])
def test_extreme_inputs_stay_finite(scale: float) -> None:
    q = torch.ones(4, 3)
    docs = [torch.ones(4, 3), torch.ones(4, 3) * 1e6, -torch.ones(4, 3)]  # all-equal and opposite scores
    opts = InfoNCEOptions(
        scale=scale, symmetric=True, focal_gamma=0.5, filter_strategy="relative", mixing="pairwise", num_mixed=2
    )
    q.requires_grad_()
    out = margin_info_nce(q, docs, opts, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(q.grad).all()
    assert out.filtered_share > 0, "duplicates of the positive are filtered"


def test_bf16_inputs_give_a_float32_loss() -> None:
    q, docs = batch(dtype=torch.bfloat16)
    out = margin_info_nce(q, docs, InfoNCEOptions(focal_gamma=2.0))
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0.0}, "`scale`"),
        ({"focal_gamma": -1.0}, "`focal_gamma`"),
        ({"filter_strategy": "percent"}, "`filter_strategy`"),
        ({"filter_strategy": "relative", "filter_margin": 1.5}, "`filter_margin`"),
        ({"mixing": "mochi"}, "`mixing`"),
        ({"mixing": "similarity", "num_mixed": 3}, "`num_mixed`"),
        ({"mix_lambda": 2.0}, "`mix_lambda`"),
        ({"num_mixed": 0}, "`num_mixed`"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InfoNCEOptions(**kwargs)


def test_bad_inputs_are_rejected() -> None:
    q, docs = batch(b=4, m=1)
    with pytest.raises(ValueError, match=r"documents\[1\]"):
        margin_info_nce(q, [docs[0], docs[1][:3]])
    with pytest.raises(ValueError, match=r"pairwise.*at least 2 hard-negative"):
        margin_info_nce(q, docs, InfoNCEOptions(mixing="pairwise"))
    with pytest.raises(ValueError, match="teacher scores of shape"):
        margin_info_nce(q, docs, InfoNCEOptions(distill_weight=1.0), teacher_scores=torch.zeros(4, 5))
    with pytest.raises(ValueError, match="`offset`"):
        margin_info_nce(q, docs, offset=2, batch_size=4)


def test_upper_triangle_and_labelled_pair_cosines_list_each_unordered_pair_once_row_major() -> None:
    matrix = torch.arange(16.0).view(4, 4)
    assert upper_triangle(matrix).tolist() == [1.0, 2.0, 3.0, 6.0, 7.0, 11.0]
    x, y = torch.randn(5, 3, dtype=torch.float64, requires_grad=True), torch.tensor([2, 0, 2, 1, 0])
    cosines, same = labelled_pair_cosines(x, y)
    pairs = list(itertools.combinations(range(5), 2))
    expected = torch.stack([F.cosine_similarity(x[i], x[j], dim=0) for i, j in pairs])
    torch.testing.assert_close(cosines, expected)
    assert same.tolist() == [bool(y[i] == y[j]) for i, j in pairs]
    assert torch.autograd.gradcheck(lambda e: labelled_pair_cosines(e, y)[0], (x,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert labelled_pair_cosines(x.detach().float(), y)[0].dtype == torch.float32
    with pytest.raises(TypeError, match="`labels`"):
        labelled_pair_cosines(x, y.tolist())


def test_info_nce_under_bf16_autocast_equals_float32() -> None:
    g = torch.Generator().manual_seed(3)
    queries, positives = torch.randn(32, 64, generator=g), torch.randn(32, 64, generator=g)
    expected = margin_info_nce(queries, [positives]).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = margin_info_nce(queries, [positives]).loss
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_empty_batches_and_wrongly_typed_options_name_the_argument() -> None:
    """#19 items 3 and 5: an empty batch raises (not a NaN loss); string options are TypeErrors naming the field."""
    q, docs = batch(b=4, m=1)
    with pytest.raises(ValueError, match=r"`queries`.*empty"):
        margin_info_nce(q[:0], [d[:0] for d in docs])
    with pytest.raises(ValueError, match="`batch_size`"):
        margin_info_nce(q, docs, batch_size=0)
    for name in ("scale", "focal_gamma", "filter_margin", "mix_lambda", "mix_temperature", "distill_weight"):
        with pytest.raises(TypeError, match=f"`{name}`"):
            InfoNCEOptions(**{name: "0.5"})
    options = InfoNCEOptions(focal_gamma=2.0, filter_strategy="relative")
    size_one = margin_info_nce(q[:1], [d[:1] for d in docs], options)
    assert torch.isfinite(size_one.loss) and torch.isfinite(size_one.similarity_gap)


def test_focal_normalize_is_finite_when_every_positive_is_certain() -> None:
    """All focal weights 0 (each query's positive far ahead at a large scale): the normalised loss is 0, not 0 / 0."""
    q = torch.eye(4, 8, dtype=torch.float64, requires_grad=True)
    docs = [torch.eye(4, 8, dtype=torch.float64)]
    options = InfoNCEOptions(scale=1e4, focal_gamma=2.0, focal_normalize=True)
    out = margin_info_nce(q, docs, options)
    assert out.mean_focal_weight == 0 and out.loss == 0
    out.loss.backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()
