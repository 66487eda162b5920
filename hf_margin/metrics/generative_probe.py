"""Gaussian naive Bayes with one shared diagonal variance on frozen features: a closed-form linear probe.

Paper: Zheng, Wu, Bao, Cao, Li, Zhu, "Revisiting Discriminative vs. Generative Classifiers: Theory and
Implications" (ICML 2023, arXiv 2302.02334). Estimator as in the paper's code (``--model nb_diag``): class means
``mu_k``, priors ``pi_k = n_k / n``, per-class MLE variances ``s2_kj`` (ddof 0) + ``var_smoothing`` (absolute,
1e-9 there), pooled ``s2_j = sum_k pi_k s2_kj``; prediction ``argmax_k log pi_k - 1/2 sum_j (x_j - mu_kj)^2 / s2_j``,
i.e. the linear classifier ``w_kj = mu_kj / s2_j``, ``b_k = log pi_k - 1/2 sum_j mu_kj^2 / s2_j``.
Unlike `sklearn.naive_bayes.GaussianNB` (per-class variances, smoothing relative to the largest variance).
`learning_curve` compares it with the paper's logistic-regression baseline (sklearn ``LogisticRegression(C=1,
lbfgs, max_iter=1000)``) on min-max scaled features (scaler fitted on the training subset, as the paper's scripts).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from hf_margin._validation import (
    check_embeddings,
    check_finite,
    check_integers,
    check_label_vector,
    check_numbers,
    check_positive_int,
)


class NaiveBayesProbe:
    """Shared-variance Gaussian naive Bayes: ``score_k(x) = x . (mu_k / s2) + log pi_k - 1/2 sum_j mu_kj^2 / s2_j``.

    `fit` keeps sufficient statistics (counts, means, within-class sums of squared deviations); `partial_fit`
    merges a new batch into them with the parallel-variance formula, so fitting in chunks equals one fit.

    Args:
        num_classes: the number of classes K (labels in [0, K)); every class needs a training row.
        priors: optional fixed (K,) class priors (positive, summing to 1); default the class frequencies. The pooled
            variance always weights classes by their frequencies (the pooled within-class variance).
        var_smoothing: added to every per-class variance (absolute, as in the paper's code).

    Example:
        >>> probe = NaiveBayesProbe(num_classes=3).fit(train_features, train_labels)
        >>> accuracy = (probe.predict(test_features) == test_labels).float().mean()
    """

    def __init__(
        self, num_classes: int, priors: Tensor | Sequence[float] | None = None, var_smoothing: float = 1e-9
    ) -> None:
        check_integers(num_classes=num_classes)
        check_positive_int(num_classes, "num_classes")
        check_numbers(var_smoothing=var_smoothing)
        if not var_smoothing >= 0 or var_smoothing == float("inf"):
            raise ValueError(f"`var_smoothing` must be a finite number >= 0, got {var_smoothing}")
        self.num_classes = num_classes
        self.var_smoothing = var_smoothing
        self.priors = None if priors is None else self._check_priors(priors, num_classes)
        self.count_: Tensor | None = None
        self.mean_: Tensor | None = None
        self.sq_dev_: Tensor | None = None

    @staticmethod
    def _check_priors(priors: Tensor | Sequence[float], num_classes: int) -> Tensor:
        values = torch.as_tensor(priors, dtype=torch.float64)
        if tuple(values.shape) != (num_classes,):
            raise ValueError(f"`priors` must have shape ({num_classes},) (one per class), got {tuple(values.shape)}")
        if not torch.isfinite(values).all() or (values <= 0).any() or abs(float(values.sum()) - 1.0) > 1e-6:
            raise ValueError(f"`priors` must be positive and sum to 1, got {values.tolist()}")
        return values

    def _check_batch(self, features: object, labels: object) -> tuple[Tensor, Tensor]:
        check_embeddings(features, name="features")
        assert isinstance(features, Tensor)
        check_finite(features, "features")  # a NaN would poison the statistics of every later prediction
        if self.mean_ is not None and features.shape[1] != self.mean_.shape[1]:
            raise ValueError(
                f"`features` must have shape (batch, {self.mean_.shape[1]}) as in the earlier fit, got "
                f"{tuple(features.shape)}"
            )
        checked = check_label_vector(labels, features.shape[0], "labels", kind="class indices")
        low, high = int(checked.min()), int(checked.max())
        if low < 0 or high >= self.num_classes:
            raise ValueError(f"`labels` must lie in [0, {self.num_classes - 1}], got values in [{low}, {high}]")
        return features.detach().double(), checked

    def fit(self, features: Tensor, labels: Tensor) -> NaiveBayesProbe:
        """Estimate the statistics from scratch on (features (N, D), labels (N,)); returns self."""
        self.count_ = self.mean_ = self.sq_dev_ = None
        return self.partial_fit(features, labels)

    def partial_fit(self, features: Tensor, labels: Tensor) -> NaiveBayesProbe:
        """Merge a batch into the statistics (Chan et al.'s parallel update: exact, order-independent)."""
        x, y = self._check_batch(features, labels)
        count = torch.bincount(y, minlength=self.num_classes).double()
        total = torch.zeros(self.num_classes, x.shape[1], dtype=torch.float64).index_add_(0, y, x)
        mean = total / count.clamp_min(1.0)[:, None]
        sq_dev = torch.zeros_like(mean).index_add_(0, y, (x - mean[y]) ** 2)
        if self.count_ is None or self.mean_ is None or self.sq_dev_ is None:
            self.count_, self.mean_, self.sq_dev_ = count, mean, sq_dev
            return self
        merged = self.count_ + count
        delta = mean - self.mean_
        share = (count / merged.clamp_min(1.0))[:, None]
        self.sq_dev_ = self.sq_dev_ + sq_dev + delta**2 * (self.count_ * share.squeeze(1))[:, None]
        self.mean_ = self.mean_ + delta * share
        self.count_ = merged
        return self

    def _fitted(self) -> tuple[Tensor, Tensor, Tensor]:
        if self.count_ is None or self.mean_ is None or self.sq_dev_ is None:
            raise RuntimeError("NaiveBayesProbe is not fitted; call `fit(features, labels)` first")
        if (self.count_ == 0).any():
            missing = torch.nonzero(self.count_ == 0).flatten().tolist()
            raise ValueError(f"`labels` must give every class a training row; classes {missing} have none")
        return self.count_, self.mean_, self.sq_dev_

    @property
    def var_(self) -> Tensor:
        """The shared (D,) variance ``sum_k pi_k (s2_kj + var_smoothing)`` (class frequencies pi_k)."""
        count, _, sq_dev = self._fitted()
        var = sq_dev.sum(0) / count.sum() + self.var_smoothing
        if (var <= 0).any():
            flat = torch.nonzero(var <= 0).flatten().tolist()
            raise ValueError(
                f"`var_smoothing` is 0 and features {flat[:10]} have zero within-class variance: their weights "
                "mu / s2 are undefined; pass var_smoothing > 0 (the paper's code uses 1e-9)"
            )
        return var

    @property
    def class_log_prior_(self) -> Tensor:
        """(K,) log priors: the fixed `priors`, else the training class frequencies."""
        count, _, _ = self._fitted()
        return (self.priors if self.priors is not None else count / count.sum()).log()

    @property
    def coef_(self) -> Tensor:
        """(K, D) weights ``mu_kj / s2_j``."""
        return self._fitted()[1] / self.var_

    @property
    def intercept_(self) -> Tensor:
        """(K,) biases ``log pi_k - 1/2 sum_j mu_kj^2 / s2_j``."""
        mean = self._fitted()[1]
        return self.class_log_prior_ - 0.5 * (mean**2 / self.var_).sum(1)

    def decision_function(self, features: Tensor) -> Tensor:
        """(N, K) linear scores ``x W^T + b`` (float64): the log joint likelihood up to a per-row constant."""
        check_embeddings(features, self._fitted()[1].shape[1], name="features")
        check_finite(features, "features")
        return features.detach().double() @ self.coef_.T + self.intercept_

    def predict_log_proba(self, features: Tensor) -> Tensor:
        """(N, K) log posteriors ``log_softmax(decision_function)``."""
        return torch.log_softmax(self.decision_function(features), dim=1)

    def predict(self, features: Tensor) -> Tensor:
        """(N,) predicted class indices."""
        return self.decision_function(features).argmax(1)


def _minmax(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low, span = train.min(0), train.max(0) - train.min(0)
    span = np.where(span > 0, span, 1.0)
    return (train - low) / span, (test - low) / span


def sample_shots(labels: Tensor, shots: int, num_classes: int, seed: int) -> Tensor:
    """Indices of `shots` rows per class drawn without replacement (seeded); raises if a class has fewer."""
    g = torch.Generator().manual_seed(seed)
    picked = []
    for label in range(num_classes):
        rows = torch.nonzero(labels == label).flatten()
        if len(rows) < shots:
            raise ValueError(f"`shots_per_class` {shots} exceeds the {len(rows)} training rows of class {label}")
        picked.append(rows[torch.randperm(len(rows), generator=g)[:shots]])
    return torch.cat(picked)


def learning_curve(
    features: Tensor,
    labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    shots_per_class: Sequence[int] = (1, 2, 5, 10, 20, 50),
    seeds: Sequence[int] = (0, 1, 2),
) -> dict[str, dict[int, list[float]]]:
    """Test accuracy of the NB probe and of logistic regression trained on `shots` rows per class, per seed.

    Both see the same rows, min-max scaled with the training subset's range (the paper's ``--minmax``).

    Returns:
        ``{"naive Bayes": {shots: [accuracy per seed]}, "logistic regression": {...}}``.

    Example:
        >>> curve = learning_curve(train_x, train_y, test_x, test_y, shots_per_class=[1, 5], seeds=[0, 1])
    """
    from sklearn.linear_model import LogisticRegression

    check_embeddings(features, name="features")
    check_embeddings(test_features, features.shape[1], name="test_features")
    check_finite(features, "features")
    check_finite(test_features, "test_features")
    check_label_vector(labels, features.shape[0], "labels", kind="class indices")
    check_label_vector(test_labels, test_features.shape[0], "test_labels", kind="class indices")
    num_classes = int(labels.max()) + 1
    if num_classes < 2:
        raise ValueError("`labels` must hold at least 2 classes (0 and 1, ...) to train a classifier")
    curve: dict[str, dict[int, list[float]]] = {"naive Bayes": {}, "logistic regression": {}}
    truth = test_labels.numpy()
    for shots in shots_per_class:
        check_positive_int(shots, "shots_per_class")
        for name in curve:
            curve[name][shots] = []
        for seed in seeds:
            rows = sample_shots(labels, shots, num_classes, seed)
            train_x, test_x = _minmax(features[rows].double().numpy(), test_features.double().numpy())
            train_y = labels[rows]
            probe = NaiveBayesProbe(num_classes).fit(torch.from_numpy(train_x), train_y)
            nb = probe.predict(torch.from_numpy(test_x)).numpy()
            with warnings.catch_warnings():  # one shot per class: sklearn warns the labels look like a regression
                warnings.simplefilter("ignore", UserWarning)
                lr = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000).fit(train_x, train_y.numpy())
            curve["naive Bayes"][shots].append(float((nb == truth).mean()))
            curve["logistic regression"][shots].append(float((lr.predict(test_x) == truth).mean()))
    return curve
