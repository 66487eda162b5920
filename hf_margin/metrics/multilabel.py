"""Multi-label metrics as TransICD and the ICD-coding literature report them, and a Trainer `compute_metrics`.

micro/macro AUC (macro over labels with both classes present), micro/macro F1 at a threshold (0.5 on sigmoid
scores, or one threshold tuned for micro F1), and precision@k (the share of the top-k scored codes that are true).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hf_margin._validation import check_flags, check_in_range, check_integers, check_numbers, check_positive_int
from hf_margin.metrics._arrays import ArrayLike, real_array


def _as_arrays(scores: ArrayLike, targets: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    scores, targets = real_array(scores, "scores"), real_array(targets, "targets")
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(
            f"`scores` and `targets` must both be (samples, labels); got {scores.shape} and {targets.shape}"
        )
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"`scores` has no samples or no labels (shape {scores.shape}); need at least one of each")
    if not np.isin(targets, (0, 1)).all():
        raise ValueError("`targets` must hold only 0 and 1 (multi-hot labels)")
    return scores, targets.astype(np.int64)


def _check_k(k: object, labels: int) -> None:
    check_integers(k=k)
    check_positive_int(k, "k")
    if k > labels:  # type: ignore[operator]
        raise ValueError(f"`k` must be at most the number of labels, {labels}; got {k}")


def _f1(predicted: np.ndarray, targets: np.ndarray, axis: int | None) -> np.ndarray:
    true_positive = (predicted & (targets == 1)).sum(axis)
    denominator = predicted.sum(axis) + targets.sum(axis)
    return np.where(denominator > 0, 2 * true_positive / np.maximum(denominator, 1), 0.0)


def precision_at_k(scores: ArrayLike, targets: ArrayLike, k: int = 5) -> float:
    """Mean over samples of the share of the k highest-scored labels that are true (divided by k).

    Args:
        scores: (samples, labels) finite scores (numpy array, tensor on any device, or nested lists).
        targets: (samples, labels) 0/1 multi-hot labels.
        k: 1 <= k <= labels.
    """
    scores, targets = _as_arrays(scores, targets)
    _check_k(k, scores.shape[1])
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.take_along_axis(targets, top, axis=1).sum(1).mean() / k)


def tune_threshold(scores: ArrayLike, targets: ArrayLike, candidates: ArrayLike | None = None) -> float:
    """The single threshold on the scores that maximises micro F1 (on a validation set, then reused)."""
    scores, targets = _as_arrays(scores, targets)
    grid = np.linspace(0.05, 0.95, 19) if candidates is None else real_array(candidates, "candidates").ravel()
    if grid.size == 0:
        raise ValueError("`candidates` is empty; pass at least one threshold (or None for the default grid)")
    return float(max(grid, key=lambda t: float(_f1(scores >= t, targets, None))))


def multilabel_metrics(scores: ArrayLike, targets: ArrayLike, threshold: float = 0.5, k: int = 5) -> dict[str, float]:
    """micro/macro AUC, micro/macro F1 at `threshold` and P@k of probabilities `scores` against 0/1 `targets`.

    AUC is undefined without both classes: ``micro_auc`` is left out of the result when every target is 0 (or every
    one is 1), ``macro_auc`` when no label has both (macro AUC averages over the labels that have both); the F1 scores
    and P@k are always there and finite. Non-finite `scores` raise a ValueError.
    """
    from sklearn.metrics import roc_auc_score

    scores, targets = _as_arrays(scores, targets)
    check_numbers(threshold=threshold)
    check_in_range(threshold, "threshold", 0.0, 1.0)
    _check_k(k, scores.shape[1])
    predicted = scores >= threshold
    present = (targets.min(0) == 0) & (targets.max(0) == 1)
    results = {}
    if 0 < targets.mean() < 1:
        results["micro_auc"] = float(roc_auc_score(targets.ravel(), scores.ravel()))
    if present.any():
        results["macro_auc"] = float(roc_auc_score(targets[:, present], scores[:, present], average="macro"))
    return results | {
        "micro_f1": float(_f1(predicted, targets, None)),
        "macro_f1": float(_f1(predicted, targets, 0).mean()),
        f"precision_at_{k}": precision_at_k(scores, targets, k),
    }


def multilabel_compute_metrics(
    threshold: float = 0.5, k: int = 5, tuned: bool = False
) -> Callable[[Any], dict[str, float]]:
    """A `compute_metrics` for `Trainer` on multi-label logits: sigmoid, then :func:`multilabel_metrics`.

    With `tuned`, also ``micro_f1_tuned`` / ``macro_f1_tuned`` at the threshold that maximises micro F1 on the
    evaluated set itself (``threshold_tuned``): an optimistic figure, to pick a threshold on a validation set.

    Example:
        >>> trainer = Trainer(model, args, train_dataset=train, eval_dataset=dev,
        ...                   compute_metrics=multilabel_compute_metrics(k=5))
    """
    check_numbers(threshold=threshold)
    check_in_range(threshold, "threshold", 0.0, 1.0)
    check_integers(k=k)
    check_positive_int(k, "k")
    check_flags(tuned=tuned)

    def compute(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        logits = real_array(logits, "predictions")
        if logits.size == 0:
            raise ValueError(f"`predictions` is empty (shape {logits.shape}); evaluate at least one sample")
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        results = multilabel_metrics(probabilities, prediction.label_ids, threshold, k)
        if tuned:
            best = tune_threshold(probabilities, prediction.label_ids)
            at_best = multilabel_metrics(probabilities, prediction.label_ids, best, k)
            results |= {
                "threshold_tuned": best,
                "micro_f1_tuned": at_best["micro_f1"],
                "macro_f1_tuned": at_best["macro_f1"],
            }
        return results

    return compute
