"""AnyLoss (arXiv 2405.14745): amplifying sigmoid, soft confusion matrix, metric losses, hard limit vs sklearn."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, fbeta_score, recall_score

from hf_margin.functional.anyloss import METRICS, amplifying_sigmoid, anyloss, soft_confusion_matrix


def binary_batch(n: int = 24, seed: int = 0, min_abs: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, generator=g, dtype=torch.float64) * 3
    logits = logits.sign() * (logits.abs() + min_abs)
    labels = torch.randint(0, 2, (n,), generator=g)
    labels[:2] = torch.tensor([0, 1])  # both classes present
    return logits, labels


def multiclass_batch(n: int = 30, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k  # every class present
    logits = torch.randn(n, k, generator=g, dtype=torch.float64)
    return logits, labels


def confident_multiclass(n: int = 40, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits whose argmax has probability > 0.9, with errors: (logits, labels, hard predictions)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    predicted = torch.where(torch.rand(n, generator=g) < 0.7, labels, torch.randint(0, k, (n,), generator=g))
    logits = torch.randn(n, k, generator=g, dtype=torch.float64)
    logits[torch.arange(n), predicted] += 8.0
    return logits, labels, predicted


def test_amplifying_sigmoid_is_centred_and_monotone() -> None:
    p = torch.linspace(0, 1, 101, dtype=torch.float64)
    for amplification in (1.0, 10.0, 73.0):
        a = amplifying_sigmoid(p, amplification)
        assert float(amplifying_sigmoid(torch.tensor(0.5), amplification)) == 0.5
        assert (a.diff() >= 0).all(), "increasing (it saturates to 1.0 in float64 at L = 73)"
        if amplification < 20:
            assert (a.diff() > 0).all(), "strictly increasing"
        assert ((a > 0) & (a < 1)).all()
        torch.testing.assert_close(a + a.flip(0), torch.ones_like(a))  # symmetric about (0.5, 0.5)
    sharp = amplifying_sigmoid(torch.tensor([0.4, 0.6], dtype=torch.float64), 73.0)
    assert float(sharp[0]) < 1e-3 and float(sharp[1]) > 1 - 1e-3


def test_soft_true_positives_tend_to_the_hard_count() -> None:
    logits, labels = binary_batch(min_abs=0.5)
    hard = (logits > 0).double()
    hard_tp = float((hard * labels).sum())
    soft_tp, deviations = [], []
    for amplification in (1.0, 10.0, 73.0):
        soft_tp.append(float(soft_confusion_matrix(logits, labels, amplification).tp))
        y_hat = amplifying_sigmoid(logits.sigmoid(), amplification)
        deviations.append(float((labels * (y_hat - hard).abs()).sum()))
    assert deviations[0] > deviations[1] > deviations[2], deviations
    assert abs(soft_tp[2] - hard_tp) < 1e-2 < abs(soft_tp[0] - hard_tp)
    # With every positive predicted positive, the soft TP climbs monotonically to the hard count N1.
    right = torch.where(labels == 1, logits.abs(), logits)
    climbing = [float(soft_confusion_matrix(right, labels, amplification).tp) for amplification in (1.0, 10.0, 73.0)]
    assert climbing[0] < climbing[1] < climbing[2] < float(labels.sum()), climbing
    assert climbing[2] == pytest.approx(float(labels.sum()), abs=1e-2)


@pytest.mark.parametrize("multiclass", [False, True])
def test_confusion_cells_add_up(multiclass: bool) -> None:
    logits, labels = multiclass_batch() if multiclass else binary_batch()
    tp, fn, fp, tn = soft_confusion_matrix(logits, labels, amplification=5.0)
    y = torch.nn.functional.one_hot(labels, 4).double() if multiclass else labels.double()
    probabilities = logits.softmax(1) if multiclass else logits.sigmoid()
    predictions = amplifying_sigmoid(probabilities, 5.0)
    n, n1, predicted = y.shape[0], y.sum(0), predictions.sum(0)
    torch.testing.assert_close(tp + fn, n1)
    torch.testing.assert_close(tp + fn + fp + tn, torch.full_like(tp, float(n)))
    # The paper's expressions.
    torch.testing.assert_close(tp, (y * predictions).sum(0))
    torch.testing.assert_close(fn, n1 - tp)
    torch.testing.assert_close(fp, predicted - tp)
    torch.testing.assert_close(tn, n - n1 - predicted + tp)


def test_losses_match_the_paper_formulas() -> None:
    logits, labels = binary_batch()
    tp, _, _, tn = soft_confusion_matrix(logits, labels, amplification=10.0)
    y_hat = amplifying_sigmoid(logits.sigmoid(), 10.0)
    n, n1 = labels.numel(), float(labels.sum())
    n0, s, eps = n - n1, float(y_hat.sum()), 1e-5
    tp, tn = float(tp), float(tn)
    expected = {
        "accuracy": 1 - (tp + tn) / n,
        "f_beta": 1 - 5 * tp / (4 * n1 + s + eps),  # beta = 2
        "g_mean": 1 - math.sqrt(tp * tn / (n1 * n0 + eps) + eps),
        "balanced_accuracy": 1 - (n0 * tp + n1 * tn) / (2 * n1 * n0 + eps),
    }
    for metric, value in expected.items():
        loss = anyloss(logits, labels, metric, beta=2.0, amplification=10.0)
        assert float(loss) == pytest.approx(value, rel=1e-12), metric


def test_f_beta_and_balanced_accuracy_stay_in_unit_interval() -> None:
    for seed in range(20):
        logits, labels = binary_batch(n=9, seed=seed)
        logits = logits * (seed % 4 + 0.1)
        for metric in ("f_beta", "balanced_accuracy", "accuracy"):
            for beta in (0.5, 1.0, 3.0):
                loss = float(anyloss(logits, labels, metric, beta=beta, amplification=[1.0, 73.0][seed % 2]))
                assert 0.0 <= loss <= 1.0, (metric, beta, seed, loss)
        many, classes = multiclass_batch(n=10, seed=seed)
        for metric in ("f_beta", "balanced_accuracy"):
            assert 0.0 <= float(anyloss(many * 3, classes, metric)) <= 1.0


def test_large_amplification_gives_one_minus_the_hard_binary_metric() -> None:
    logits, labels = binary_batch(n=50, min_abs=1.0)  # p >= 0.73 or <= 0.27: A(p) is exactly 0 or 1 at L = 1e3
    predictions = (logits > 0).long().numpy()
    y = labels.numpy()
    tpr = recall_score(y, predictions)
    tnr = recall_score(1 - y, 1 - predictions)
    hard = {
        "accuracy": accuracy_score(y, predictions),
        "f_beta": f1_score(y, predictions),
        "g_mean": math.sqrt(tpr * tnr),
        "balanced_accuracy": balanced_accuracy_score(y, predictions),
    }
    for metric, value in hard.items():
        loss = anyloss(logits, labels, metric, amplification=1e3, eps=1e-12)
        assert float(loss) == pytest.approx(1 - value, abs=1e-9), metric
        default = anyloss(logits, labels, metric, eps=1e-12)  # L = 73 is already close to the step
        assert float(default) == pytest.approx(1 - value, abs=1e-5), metric
    loss = anyloss(logits, labels, "f_beta", beta=2.0, amplification=1e3, eps=1e-12)
    assert float(loss) == pytest.approx(1 - fbeta_score(y, predictions, beta=2.0), abs=1e-9)
    # The default eps moves the G-mean by at most sqrt(eps).
    assert float(anyloss(logits, labels, "g_mean", amplification=1e3)) == pytest.approx(1 - hard["g_mean"], abs=3.2e-3)


def test_large_amplification_gives_one_minus_the_hard_macro_metric() -> None:
    logits, labels, predicted = confident_multiclass()
    y, p = labels.numpy(), predicted.numpy()
    loss = anyloss(logits, labels, "f_beta", amplification=1e3, eps=1e-12)
    assert float(loss) == pytest.approx(1 - f1_score(y, p, average="macro"), abs=1e-9)
    per_class = {"balanced_accuracy": [], "g_mean": [], "accuracy": []}
    for k in range(4):
        yk, pk = (y == k).astype(int), (p == k).astype(int)
        per_class["balanced_accuracy"].append(balanced_accuracy_score(yk, pk))
        per_class["g_mean"].append(math.sqrt(recall_score(yk, pk) * recall_score(1 - yk, 1 - pk)))
        per_class["accuracy"].append(accuracy_score(yk, pk))
    for metric, values in per_class.items():
        loss = anyloss(logits, labels, metric, amplification=1e3, eps=1e-12)
        assert float(loss) == pytest.approx(1 - sum(values) / 4, abs=1e-9), metric


def test_multiclass_averages_over_present_classes_only() -> None:
    logits, labels, _ = confident_multiclass(n=12, k=3)
    wide = torch.cat([logits, torch.full((12, 2), -20.0, dtype=torch.float64)], dim=1)  # classes 3, 4 never occur
    for metric in METRICS:
        torch.testing.assert_close(anyloss(wide, labels, metric), anyloss(logits, labels, metric), atol=1e-6, rtol=0)


def test_probability_inputs_match_logit_inputs() -> None:
    logits, labels = binary_batch()
    many, classes = multiclass_batch()
    for metric in METRICS:
        torch.testing.assert_close(
            anyloss(logits.sigmoid(), labels, metric, inputs="probabilities"), anyloss(logits, labels, metric)
        )
        torch.testing.assert_close(
            anyloss(many.softmax(1), classes, metric, inputs="probabilities"), anyloss(many, classes, metric)
        )
    column = anyloss(logits.unsqueeze(1), labels.unsqueeze(1).float(), "g_mean")
    torch.testing.assert_close(column, anyloss(logits, labels.bool(), "g_mean"))


@pytest.mark.parametrize("metric", METRICS)
def test_gradcheck(metric: str) -> None:
    logits, labels = binary_batch(n=10)
    many, classes = multiclass_batch(n=9, k=3)
    for amplification in (2.0, 10.0):
        assert torch.autograd.gradcheck(
            lambda z: anyloss(z, labels, metric, beta=1.5, amplification=amplification),  # noqa: B023
            (logits.clone().requires_grad_(),),
        )
        assert torch.autograd.gradcheck(
            lambda z: anyloss(z, classes, metric, amplification=amplification),  # noqa: B023
            (many.clone().requires_grad_(),),
        )
    probabilities = logits.sigmoid().clamp(0.05, 0.95).detach().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p: anyloss(p, labels, metric, amplification=5.0, inputs="probabilities"), (probabilities,)
    )


@pytest.mark.parametrize("metric", METRICS)
def test_extreme_logits_and_single_class_batches_are_finite(metric: str) -> None:
    extreme = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0], requires_grad=True)
    loss = anyloss(extreme, torch.tensor([1, 0, 0, 1, 1]), metric)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(extreme.grad).all()
    many = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], requires_grad=True)
    loss = anyloss(many, torch.tensor([0, 2]), metric)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(many.grad).all()
    for only in (0, 1):
        logits = torch.randn(6, dtype=torch.float64, requires_grad=True)
        loss = anyloss(logits, torch.full((6,), only), metric)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all(), (metric, only)
        assert 0.0 <= float(loss.detach()) <= 1.0


def test_single_class_batch_values() -> None:
    logits = torch.randn(6, dtype=torch.float64)
    negatives, positives = torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long)
    assert float(anyloss(logits, negatives, "f_beta")) == 1.0
    assert float(anyloss(logits, negatives, "balanced_accuracy")) == 1.0
    assert float(anyloss(logits, positives, "balanced_accuracy")) == 1.0
    for labels in (negatives, positives):
        assert float(anyloss(logits, labels, "g_mean")) == pytest.approx(1 - math.sqrt(1e-5))
    logits.requires_grad_()
    anyloss(logits, positives, "f_beta").backward()  # still informative: it rewards true positives
    assert (logits.grad < 0).all()


def test_half_precision_is_computed_in_float32() -> None:
    logits, labels = binary_batch()
    loss = anyloss(logits.bfloat16(), labels, "g_mean")
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_bad_input_names_the_argument() -> None:
    logits, labels = binary_batch(n=4)
    with pytest.raises(ValueError, match=r"`labels` must hold only 0 and 1"):
        anyloss(logits, torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(4,\)"):
        anyloss(logits, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 2\]"):
        anyloss(torch.zeros(4, 3), torch.tensor([0, 1, 3, 1]))
    with pytest.raises(TypeError, match="`labels` must hold integer class indices"):
        anyloss(torch.zeros(4, 3), torch.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="`metric` must be one of"):
        anyloss(logits, labels, "f1")
    for beta in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="`beta` must be a finite number > 0"):
            anyloss(logits, labels, beta=beta)
    with pytest.raises(ValueError, match="`amplification` must be a finite number > 0"):
        anyloss(logits, labels, amplification=0.0)
    with pytest.raises(ValueError, match="`eps` must be a finite number > 0"):
        anyloss(logits, labels, eps=0.0)
    with pytest.raises(ValueError, match="`inputs` must be one of"):
        anyloss(logits, labels, inputs="probs")
    with pytest.raises(ValueError, match=r"`scores` must lie in \[0, 1\]"):
        anyloss(logits, labels, inputs="probabilities")
    with pytest.raises(ValueError, match="`scores` must have shape"):
        anyloss(torch.zeros(2, 3, 4), labels)
    with pytest.raises(TypeError, match="`scores` must be a floating-point"):
        anyloss(torch.zeros(4, dtype=torch.long), labels)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scores_give_a_non_finite_loss(bad: float) -> None:
    """#19 item 3: the saturating sigmoid would turn an inf score into a plausible loss; it comes out NaN instead
    (decided on the device, no sync), binary and multi-class."""
    scores, labels = torch.randn(8), torch.tensor([0, 1] * 4)
    scores[1] = bad
    assert torch.isnan(anyloss(scores, labels, "f_beta"))
    logits = torch.randn(8, 3)
    logits[2, 1] = bad
    assert torch.isnan(anyloss(logits, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]), "accuracy"))
    assert torch.isfinite(anyloss(torch.randn(8), labels, "g_mean")), "finite input stays finite"
