"""AUC-margin loss (Yuan et al., arXiv 2012.03173; the math of AUCMarginLoss): hand formulas, LibAUC 2.0.1, the
saddle point, edge cases."""

from __future__ import annotations

import warnings

import pytest
import torch

from hf_margin.functional.auc_margin import auc_margin_loss, auc_margin_saddle

LABELS = torch.tensor([1, 0, 0, 1, 0, 0, 0, 0, 1, 0])  # 3 positives out of 10


def grad(t: torch.Tensor) -> torch.Tensor:
    assert t.grad is not None
    return t.grad


def probabilities(seed: int = 0, n: int = 10, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.05 + 0.9 * torch.rand(n, generator=g)).to(dtype)


def class_stats(h: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float, float, float]:
    """(q+, E[h|+], E[h|-], Var(h|+), Var(h|-)) with population variances."""
    hp, hn = h[y == 1], h[y == 0]
    return (
        len(hp) / len(h),
        float(hp.mean()),
        float(hn.mean()),
        float(hp.var(unbiased=False)),
        float(hn.var(unbiased=False)),
    )


def v1_by_hand(h: torch.Tensor, y: torch.Tensor, a: float, b: float, alpha: float, m: float, p: float) -> float:
    n = len(h)
    total = 0.0
    for hi, yi in zip(h.tolist(), y.tolist(), strict=True):
        if yi == 1:
            total += (1 - p) * (hi - a) ** 2 + 2 * alpha * (p * (1 - p) * m - (1 - p) * hi)
        else:
            total += p * (hi - b) ** 2 + 2 * alpha * (p * (1 - p) * m + p * hi)
    return total / n - p * (1 - p) * alpha**2


def v2_by_hand(h: torch.Tensor, y: torch.Tensor, a: float, b: float, alpha: float, m: float) -> float:
    hp, hn = h[y == 1].tolist(), h[y == 0].tolist()
    e_pos, e_neg = sum(hp) / len(hp), sum(hn) / len(hn)
    quad = sum((x - a) ** 2 for x in hp) / len(hp) + sum((x - b) ** 2 for x in hn) / len(hn)
    return quad + 2 * alpha * (m + e_neg - e_pos) - alpha**2


def v2_libauc_by_hand(h: torch.Tensor, y: torch.Tensor, a: float, b: float, alpha: float, m: float) -> float:
    # LibAUC 2.0.1's code: the alpha term is (N-/N) E[h|-] - E[h|+] (all values nonzero here).
    q_pos, e_pos, e_neg, _, _ = class_stats(h, y)
    quad = v2_by_hand(h, y, a, b, 0.0, m)
    return quad + 2 * alpha * (m + (1 - q_pos) * e_neg - e_pos) - alpha**2


@pytest.mark.parametrize("imratio", [None, 0.1, 0.5])
def test_v1_matches_hand_formula(imratio: float | None) -> None:
    h = probabilities()
    p = 0.3 if imratio is None else imratio
    got = auc_margin_loss(h, LABELS, 0.4, 0.2, 0.7, margin=0.8, imratio=imratio)
    assert got.shape == ()
    assert float(got) == pytest.approx(v1_by_hand(h, LABELS, 0.4, 0.2, 0.7, 0.8, p), rel=1e-12)


def test_v1_with_imratio_equal_to_batch_ratio_is_the_default() -> None:
    h = probabilities(1)
    torch.testing.assert_close(
        auc_margin_loss(h, LABELS, 0.4, 0.2, 0.7, imratio=0.3), auc_margin_loss(h, LABELS, 0.4, 0.2, 0.7)
    )


def test_v2_formula_and_libauc_compat_differ_on_an_unbalanced_batch() -> None:
    h = probabilities(2)
    a, b, alpha, m = 0.6, 0.3, 0.5, 1.0
    doc = auc_margin_loss(h, LABELS, a, b, alpha, margin=m, version="v2")
    compat = auc_margin_loss(h, LABELS, a, b, alpha, margin=m, version="v2", libauc_compat=True)
    assert float(doc) == pytest.approx(v2_by_hand(h, LABELS, a, b, alpha, m), rel=1e-12)
    assert float(compat) == pytest.approx(v2_libauc_by_hand(h, LABELS, a, b, alpha, m), rel=1e-12)
    q_pos, _, e_neg, _, _ = class_stats(h, LABELS)
    assert float(compat - doc) == pytest.approx(-2 * alpha * q_pos * e_neg, rel=1e-10)
    assert abs(float(compat - doc)) > 0.1


def test_libauc_compat_does_not_change_v1() -> None:
    h = probabilities(3)
    torch.testing.assert_close(
        auc_margin_loss(h, LABELS, 0.4, 0.2, 0.7, libauc_compat=True), auc_margin_loss(h, LABELS, 0.4, 0.2, 0.7)
    )


@pytest.mark.parametrize(
    ("version", "imratio", "auto"), [("v1", None, True), ("v1", 0.2, False), ("v1", 0.7, False), ("v2", None, True)]
)
@pytest.mark.parametrize("column", [False, True])
def test_matches_libauc_value_and_gradients(version: str, imratio: float | None, auto: bool, column: bool) -> None:
    libauc_losses = pytest.importorskip("libauc.losses")
    h = probabilities(4, dtype=torch.float32)
    labels = LABELS.unsqueeze(1) if column else LABELS
    scores = h.unsqueeze(1) if column else h
    a0, b0, alpha0 = 0.35, 0.15, 0.6

    ref_loss = libauc_losses.AUCMLoss(margin=0.9, imratio=imratio, version=version, device="cpu")
    with torch.no_grad():
        ref_loss.a.fill_(a0)
        ref_loss.b.fill_(b0)
        ref_loss.alpha.fill_(alpha0)
    ref_scores = scores.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ref_loss(ref_scores, labels, auto=auto)
    ref.sum().backward()

    ours_scores = scores.clone().requires_grad_()
    a, b, alpha = (torch.tensor([v], requires_grad=True) for v in (a0, b0, alpha0))
    ours = auc_margin_loss(
        ours_scores, labels, a, b, alpha, margin=0.9, imratio=imratio, version=version, libauc_compat=True
    )
    ours.backward()

    torch.testing.assert_close(ours, ref.reshape(()))
    torch.testing.assert_close(ours_scores.grad, ref_scores.grad)
    for mine, theirs in ((a, ref_loss.a), (b, ref_loss.b), (alpha, ref_loss.alpha)):
        torch.testing.assert_close(mine.grad, theirs.grad)


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("separated", [False, True])
def test_closed_form_saddle(version: str, separated: bool) -> None:
    h = probabilities(5)
    margin = 1.0
    if separated:  # positives in [0.5, 1], negatives in [0, 0.5]: alpha* = max(0, 0.2 - E[h|+] + E[h|-]) = 0
        h, margin = torch.where(LABELS == 1, 0.5 + 0.5 * h, 0.5 * h), 0.2
    saddle = auc_margin_saddle(h, LABELS, margin=margin)
    q_pos, e_pos, e_neg, var_pos, var_neg = class_stats(h, LABELS)
    gap = margin - e_pos + e_neg
    assert float(saddle.a) == pytest.approx(e_pos) and float(saddle.b) == pytest.approx(e_neg)
    assert float(saddle.alpha) == pytest.approx(max(gap, 0.0))

    a, b, alpha = (t.clone().requires_grad_() for t in saddle)
    value = auc_margin_loss(h, LABELS, a, b, alpha, margin=margin, version=version)
    value.backward()
    assert abs(float(grad(a))) < 1e-12 and abs(float(grad(b))) < 1e-12
    if gap > 0:
        assert abs(float(grad(alpha))) < 1e-12
    else:  # at alpha* = 0 the ascent direction points out of the feasible set
        assert float(grad(alpha)) <= 0
    prior = q_pos * (1 - q_pos) if version == "v1" else 1.0
    assert float(value.detach()) == pytest.approx(prior * (var_pos + var_neg + max(gap, 0.0) ** 2), rel=1e-10)
    assert (gap > 0) != separated, "exercise both alpha* > 0 and alpha* = 0"


@pytest.mark.parametrize("imratio", [0.5, 0.1])
def test_saddle_with_fixed_imratio(imratio: float) -> None:
    # alpha* = max(0, m + q- E[h|-] / (1 - p) - q+ E[h|+] / p): 1.41 for p = 0.5, clipped (-0.30) for p = 0.1.
    h = probabilities(6)
    saddle = auc_margin_saddle(h, LABELS, imratio=imratio)
    q_pos, e_pos, e_neg, _, _ = class_stats(h, LABELS)
    gap = 1.0 + (1 - q_pos) * e_neg / (1 - imratio) - q_pos * e_pos / imratio
    assert float(saddle.alpha) == pytest.approx(max(gap, 0.0))
    a, b, alpha = (t.clone().requires_grad_() for t in saddle)
    auc_margin_loss(h, LABELS, a, b, alpha, imratio=imratio).backward()
    assert abs(float(grad(a))) < 1e-12 and abs(float(grad(b))) < 1e-12
    if gap > 0:
        assert abs(float(grad(alpha))) < 1e-12
    else:
        assert float(grad(alpha)) < 0


def test_positives_a_margin_above_all_negatives_give_zero_alpha() -> None:
    labels = torch.tensor([1, 1, 0, 0, 0])
    h = torch.tensor([0.9, 0.75, 0.2, 0.1, 0.25], dtype=torch.float64)  # min positive - max negative = 0.5
    assert float(auc_margin_saddle(h, labels, margin=0.5).alpha) == 0.0
    assert float(auc_margin_saddle(h, labels, margin=0.7).alpha) > 0.0  # sanity: a larger margin is not met
    perfect = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert float(auc_margin_saddle(perfect, labels, margin=1.0).alpha) == 0.0


def test_shift_of_scores_and_centres() -> None:
    # F(h + c, a + c, b + c) == F(h, a, b) holds for v1 with the batch ratio and for v2 (the docstring's formula);
    # with a fixed imratio p it moves by 2 alpha c (p - q+), and LibAUC's v2 code by -2 alpha c q+.
    h = 0.2 + 0.4 * probabilities(7)
    a, b, alpha, c = 0.5, 0.3, 0.8, 0.3
    q_pos = 0.3

    def shift(**kwargs: object) -> float:
        moved = auc_margin_loss(h + c, LABELS, a + c, b + c, alpha, **kwargs)  # type: ignore[arg-type]
        return float(moved - auc_margin_loss(h, LABELS, a, b, alpha, **kwargs))  # type: ignore[arg-type]

    assert shift() == pytest.approx(0.0, abs=1e-12)
    assert shift(version="v2") == pytest.approx(0.0, abs=1e-12)
    assert shift(imratio=0.1) == pytest.approx(2 * alpha * c * (0.1 - q_pos), rel=1e-9)
    assert shift(version="v2", libauc_compat=True) == pytest.approx(-2 * alpha * c * q_pos, rel=1e-9)


@pytest.mark.parametrize("only", [0, 1])
@pytest.mark.parametrize(
    ("version", "compat", "imratio"), [("v1", False, None), ("v1", False, 0.2), ("v2", False, None), ("v2", True, None)]
)
def test_one_class_batch_is_finite(only: int, version: str, compat: bool, imratio: float | None) -> None:
    logits = torch.randn(6, dtype=torch.float64, requires_grad=True)
    a, b, alpha = (torch.tensor([v], dtype=torch.float64, requires_grad=True) for v in (0.4, 0.2, 0.5))
    labels = torch.full((6,), only)
    loss = auc_margin_loss(
        logits, labels, a, b, alpha, imratio=imratio, version=version, libauc_compat=compat, score_type="logits"
    )
    loss.backward()
    assert torch.isfinite(loss)
    for t in (logits, a, b, alpha):
        assert torch.isfinite(grad(t)).all()


def test_v2_drops_the_missing_class_terms() -> None:
    h = probabilities(8, n=4)
    positives_only = auc_margin_loss(h, torch.ones(4), 0.4, 0.2, 0.5, version="v2")
    expected = float(((h - 0.4) ** 2).mean()) + 2 * 0.5 * (1.0 - float(h.mean())) - 0.25
    assert float(positives_only) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("version", "compat"), [("v1", False), ("v2", False), ("v2", True)])
def test_extreme_logits_are_finite(version: str, compat: bool) -> None:
    logits = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0], requires_grad=True)
    a, b, alpha = (torch.tensor([v], requires_grad=True) for v in (0.4, 0.2, 0.5))
    loss = auc_margin_loss(
        logits, torch.tensor([1, 0, 0, 1, 1]), a, b, alpha, version=version, libauc_compat=compat, score_type="logits"
    )
    loss.backward()
    assert torch.isfinite(loss)
    for t in (logits, a, b, alpha):
        assert torch.isfinite(grad(t)).all()


def test_half_precision_logits_are_computed_in_float32() -> None:
    logits = torch.randn(10).to(torch.bfloat16)
    loss = auc_margin_loss(logits, LABELS, 0.4, 0.2, 0.5, score_type="logits")
    assert loss.dtype == torch.float32
    expected = auc_margin_loss(torch.sigmoid(logits.float()), LABELS, 0.4, 0.2, 0.5)
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize(
    ("version", "compat", "imratio", "score_type"),
    [
        ("v1", False, None, "probabilities"),
        ("v1", False, 0.25, "logits"),
        ("v2", False, None, "logits"),
        ("v2", True, None, "probabilities"),
    ],
)
def test_gradcheck(version: str, compat: bool, imratio: float | None, score_type: str) -> None:
    h = probabilities(9)
    scores = (torch.logit(h) if score_type == "logits" else h).requires_grad_()
    a, b, alpha = (torch.tensor([v], dtype=torch.float64, requires_grad=True) for v in (0.45, 0.25, 0.6))

    def fn(s: torch.Tensor, a_: torch.Tensor, b_: torch.Tensor, alpha_: torch.Tensor) -> torch.Tensor:
        return auc_margin_loss(
            s, LABELS, a_, b_, alpha_, imratio=imratio, version=version, libauc_compat=compat, score_type=score_type
        )

    assert torch.autograd.gradcheck(fn, (scores, a, b, alpha))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"labels": torch.tensor([1, -1, -1, 1])}, "`labels`"),
        ({"labels": torch.tensor([1, 0, 2, 1])}, "`labels`"),
        ({"labels": torch.tensor([1, 0, 0])}, "`labels`"),
        ({"labels": torch.tensor([[1, 0, 0, 1]])}, "`labels`"),
        ({"scores": torch.rand(4, 2, 3)}, "`scores`"),
        ({"scores": torch.rand(4, 2), "labels": torch.ones(4, 3)}, "`labels`"),
        ({"scores": torch.rand(4, 2), "labels": torch.tensor([0, 1, 2, 1])}, "`labels`"),
        ({"scores": torch.rand(4, 2), "imratio": [0.3, 0.3, 0.3]}, "`imratio`"),
        (
            {"scores": torch.rand(4, 2), "labels": torch.tensor([0, 1, 1, 0]), "libauc_compat": True, "version": "v2"},
            "`libauc_compat`",
        ),
        ({"scores": torch.rand(0)}, "`scores`"),
        ({"scores": torch.tensor([0.2, 1.5, 0.1, 0.3])}, "`scores`"),
        ({"imratio": 0.0}, "`imratio`"),
        ({"imratio": 1.0}, "`imratio`"),
        ({"imratio": 1.5}, "`imratio`"),
        ({"imratio": 0.3, "version": "v2"}, "`imratio`"),
        ({"version": "v3"}, "`version`"),
        ({"score_type": "probs"}, "`score_type`"),
        ({"margin": -1.0}, "`margin`"),
        ({"a": torch.zeros(2)}, "`a`"),
    ],
)
def test_errors_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    args: dict[str, object] = {
        "scores": torch.tensor([0.9, 0.2, 0.4, 0.7]),
        "labels": torch.tensor([1, 0, 0, 1]),
        "a": 0.5,
        "b": 0.5,
        "alpha": 0.0,
        **kwargs,
    }
    with pytest.raises(ValueError, match=name):
        auc_margin_loss(**args)  # type: ignore[arg-type]


def test_integer_scores_are_rejected() -> None:
    with pytest.raises(TypeError, match="`scores`"):
        auc_margin_loss(torch.tensor([1, 0]), torch.tensor([1, 0]), 0.0, 0.0, 0.0)


def test_saddle_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="`labels`"):
        auc_margin_saddle(torch.rand(4), torch.ones(4))
