"""NaiveBayesProbe (shared-variance Gaussian NB, arXiv 2302.02334): the closed-form linear classifier, sklearn's
GaussianNB with its per-class variances replaced by the pooled one, priors, incremental fit, the learning curve,
and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.naive_bayes import GaussianNB

from hf_margin.metrics.generative_probe import NaiveBayesProbe, learning_curve, sample_shots


def data(seed: int = 0, rows: int = 60, dim: int = 5, classes: int = 3):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(rows) % classes
    centres = torch.randn(classes, dim, generator=g, dtype=torch.float64) * 2
    scales = torch.rand(dim, generator=g, dtype=torch.float64) + 0.3
    return centres[labels] + torch.randn(rows, dim, generator=g, dtype=torch.float64) * scales, labels


def test_closed_form_statistics_and_linear_decision_function() -> None:
    x, y = data()
    probe = NaiveBayesProbe(3).fit(x, y)
    means = torch.stack([x[y == k].mean(0) for k in range(3)])
    pooled = sum((y == k).double().mean() * (x[y == k].var(0, unbiased=False) + 1e-9) for k in range(3))
    torch.testing.assert_close(probe.var_, pooled)
    quadratic = torch.stack(
        [torch.log((y == k).double().mean()) - 0.5 * ((x - means[k]) ** 2 / pooled).sum(1) for k in range(3)], 1
    )
    scores = probe.decision_function(x)
    # linear form = log joint up to a per-row constant (-1/2 sum x^2 / s2)
    torch.testing.assert_close(scores - quadratic, (0.5 * (x**2 / pooled).sum(1))[:, None].expand(-1, 3))
    torch.testing.assert_close(scores, x @ probe.coef_.T + probe.intercept_)
    torch.testing.assert_close(probe.coef_, means / pooled)
    # linear in x: f(a x1 + (1-a) x2) = a f(x1) + (1-a) f(x2)
    a = 0.3
    torch.testing.assert_close(
        probe.decision_function(a * x[:5] + (1 - a) * x[5:10]), a * scores[:5] + (1 - a) * scores[5:10]
    )
    assert torch.equal(probe.predict(x), quadratic.argmax(1))


def test_equals_sklearn_gaussian_nb_with_pooled_variance() -> None:
    x, y = data(1, rows=90, dim=6, classes=4)
    reference = GaussianNB(var_smoothing=0.0).fit(x.numpy(), y.numpy())
    # sklearn fits per-class variances; pool them with the class frequencies, then let sklearn score
    pooled = (reference.class_count_[:, None] / len(y) * reference.var_).sum(0) + 1e-9
    reference.var_ = np.tile(pooled, (4, 1))
    probe = NaiveBayesProbe(4).fit(x, y)
    np.testing.assert_allclose(
        probe.predict_log_proba(x).exp().numpy(), reference.predict_proba(x.numpy()), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_array_equal(probe.predict(x).numpy(), reference.predict(x.numpy()))
    # and differs from sklearn's own per-class-variance GaussianNB
    plain = GaussianNB(var_smoothing=0.0).fit(x.numpy(), y.numpy())
    assert not np.allclose(probe.predict_log_proba(x).numpy(), plain.predict_log_proba(x.numpy()), atol=1e-3)


def test_priors_shift_only_the_intercept() -> None:
    x, y = data(2)
    empirical = NaiveBayesProbe(3).fit(x, y)
    priors = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    fixed = NaiveBayesProbe(3, priors=priors).fit(x, y)
    torch.testing.assert_close(fixed.coef_, empirical.coef_)
    torch.testing.assert_close(
        fixed.intercept_ - empirical.intercept_, priors.log() - torch.log(torch.ones(3) / 3).double()
    )
    unbalanced = torch.cat([torch.zeros(40, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    probe = NaiveBayesProbe(2).fit(torch.randn(50, 2, dtype=torch.float64), unbalanced)
    torch.testing.assert_close(probe.class_log_prior_.exp(), torch.tensor([0.8, 0.2], dtype=torch.float64))


def test_incremental_fit_equals_one_fit_and_permutation_invariance() -> None:
    x, y = data(3)
    whole = NaiveBayesProbe(3).fit(x, y)
    chunked = NaiveBayesProbe(3).fit(x[:7], y[:7]).partial_fit(x[7:31], y[7:31]).partial_fit(x[31:], y[31:])
    torch.testing.assert_close(chunked.coef_, whole.coef_)
    torch.testing.assert_close(chunked.intercept_, whole.intercept_)
    one_class_chunk = NaiveBayesProbe(3).fit(x[y == 0], y[y == 0]).partial_fit(x[y != 0], y[y != 0])
    torch.testing.assert_close(one_class_chunk.var_, whole.var_)
    perm = torch.randperm(5, generator=torch.Generator().manual_seed(0))
    permuted = NaiveBayesProbe(3).fit(x[:, perm], y)
    assert torch.equal(permuted.predict(x[:, perm]), whole.predict(x))


def test_extreme_inputs_stay_finite() -> None:
    x = torch.zeros(6, 3)  # constant features: variance is only the smoothing
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    x[3:, 0] = 1.0
    probe = NaiveBayesProbe(2).fit(x, y)
    scores = probe.decision_function(x * 1e6)
    assert torch.isfinite(scores).all() and torch.equal(probe.predict(x), y)
    assert torch.isfinite(probe.predict_log_proba(x * 1e6)).all()


def test_gaussian_mixture_reaches_bayes_decision() -> None:
    g = torch.Generator().manual_seed(4)
    y = torch.randint(2, (20000,), generator=g)
    mu = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    sd = torch.tensor([1.0, 2.0], dtype=torch.float64)
    x = mu[y] + torch.randn(20000, 2, generator=g, dtype=torch.float64) * sd
    probe = NaiveBayesProbe(2).fit(x, y)
    torch.testing.assert_close(probe.coef_[1] - probe.coef_[0], (mu[1] - mu[0]) / sd**2, atol=0.05, rtol=0.05)


def test_learning_curve_and_shots() -> None:
    x, y = data(5, rows=120)
    rows = sample_shots(y, 4, 3, seed=0)
    assert torch.equal(torch.bincount(y[rows]), torch.tensor([4, 4, 4]))
    assert not torch.equal(rows, sample_shots(y, 4, 3, seed=1))
    curve = learning_curve(x[:90], y[:90], x[90:], y[90:], shots_per_class=[1, 10], seeds=[0, 1])
    assert set(curve) == {"naive Bayes", "logistic regression"}
    assert all(len(curve[m][s]) == 2 and all(0 <= v <= 1 for v in curve[m][s]) for m in curve for s in (1, 10))
    assert np.mean(curve["naive Bayes"][10]) > 0.6  # separated classes
    with pytest.raises(ValueError, match="shots_per_class"):
        learning_curve(x[:90], y[:90], x[90:], y[90:], shots_per_class=[40], seeds=[0])


def test_errors_name_the_argument() -> None:
    x, y = data()
    with pytest.raises(ValueError, match="num_classes"):
        NaiveBayesProbe(0)
    with pytest.raises(ValueError, match="priors"):
        NaiveBayesProbe(3, priors=[0.5, 0.5])
    with pytest.raises(ValueError, match="priors"):
        NaiveBayesProbe(2, priors=[0.9, 0.2])
    with pytest.raises(ValueError, match="var_smoothing"):
        NaiveBayesProbe(2, var_smoothing=-1.0)
    with pytest.raises(ValueError, match="labels"):
        NaiveBayesProbe(2).fit(x, y)
    with pytest.raises(ValueError, match="labels"):
        NaiveBayesProbe(3).fit(x, y[:-1])
    with pytest.raises(TypeError, match="labels"):
        NaiveBayesProbe(3).fit(x, y.float())
    with pytest.raises(ValueError, match="features"):
        NaiveBayesProbe(3).fit(x[:, 0], y)
    with pytest.raises(ValueError, match="classes \\[3\\]"):
        NaiveBayesProbe(4).fit(x, y).predict(x)
    with pytest.raises(RuntimeError, match="not fitted"):
        NaiveBayesProbe(3).predict(x)
    probe = NaiveBayesProbe(3).fit(x, y)
    with pytest.raises(ValueError, match="features"):
        probe.predict(x[:, :2])
    with pytest.raises(ValueError, match="features"):
        probe.partial_fit(x[:, :2], y)


def test_a_constant_feature_without_smoothing_is_refused_not_nan_scores() -> None:
    # issue 19 item 3: finite features with a zero pooled variance and var_smoothing=0 gave inf/NaN weights
    x = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 5.0], [0.0, 7.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    probe = NaiveBayesProbe(2, var_smoothing=0.0).fit(x, y)
    with pytest.raises(ValueError, match=r"`var_smoothing` is 0 and features \[0\] have zero within-class variance"):
        probe.predict(x)
    smoothed = NaiveBayesProbe(2).fit(x, y)
    assert torch.isfinite(smoothed.decision_function(x)).all()
    assert smoothed.predict(x).tolist() == [0, 0, 1, 1]
