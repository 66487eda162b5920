"""Negative flips of a model update: samples the old model got right and the new one gets wrong.

From "Mitigating Negative Flips via Margin Preserving Training" (Ricci et al., arXiv 2511.08322; definitions as in
the official code's ``compute_negative_flip_rate``):

- ``NFR = (1/N) sum_i 1[old_i = y_i and new_i != y_i]``, in [0, 1 - ER_old];
- relative NFR ``= NFR / ((1 - ER_old) ER_new)`` (0 when the denominator is 0): the flips relative to what
  independent errors would give (1 when the two models' errors are independent).

The official evaluation counts them on the test samples of the old classes only; `negative_flip_compute_metrics`
does so when given `num_old_classes`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hf_margin._validation import check_integers, check_positive_int
from hf_margin.metrics._arrays import ArrayLike, real_array, to_numpy


def _as_labels(values: ArrayLike, name: str, size: int | None = None) -> np.ndarray:
    array = to_numpy(values, name)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"`{name}` must be a 1-D array of integer class indices, got dtype {array.dtype} and shape {array.shape}"
        )
    if size is not None and array.shape[0] != size:
        raise ValueError(f"`{name}` must have shape ({size},) like `labels`, got {array.shape}")
    return array


def negative_flip_metrics(
    old_predictions: ArrayLike, new_predictions: ArrayLike, labels: ArrayLike
) -> dict[str, float]:
    """Old and new error rates, NFR and relative NFR of one update on one labelled set.

    Args:
        old_predictions: (N,) class indices predicted by the old model.
        new_predictions: (N,) class indices predicted by the new model.
        labels: (N,) true class indices.

    Example:
        >>> negative_flip_metrics(old_logits.argmax(1), new_logits.argmax(1), labels)["negative_flip_rate"]
    """
    truth = _as_labels(labels, "labels")
    if truth.shape[0] == 0:
        raise ValueError("`labels` is empty; need at least one sample")
    old_right = _as_labels(old_predictions, "old_predictions", truth.shape[0]) == truth
    new_right = _as_labels(new_predictions, "new_predictions", truth.shape[0]) == truth
    nfr = float(np.mean(old_right & ~new_right))
    old_error, new_error = 1.0 - float(old_right.mean()), 1.0 - float(new_right.mean())
    expected = (1.0 - old_error) * new_error
    return {
        "old_error_rate": old_error,
        "new_error_rate": new_error,
        "negative_flip_rate": nfr,
        "relative_negative_flip_rate": nfr / expected if expected > 0 else 0.0,
    }


def negative_flip_rate(old_predictions: ArrayLike, new_predictions: ArrayLike, labels: ArrayLike) -> float:
    """``(1/N) sum_i 1[old_i = y_i and new_i != y_i]``: the share of samples the update breaks."""
    return negative_flip_metrics(old_predictions, new_predictions, labels)["negative_flip_rate"]


def relative_negative_flip_rate(old_predictions: ArrayLike, new_predictions: ArrayLike, labels: ArrayLike) -> float:
    """``NFR / ((1 - ER_old) ER_new)``, 0 if the denominator is 0: 1 for independent errors, < 1 for fewer flips."""
    return negative_flip_metrics(old_predictions, new_predictions, labels)["relative_negative_flip_rate"]


def negative_flip_compute_metrics(
    old_predictions: ArrayLike, num_old_classes: int | None = None
) -> Callable[[Any], dict[str, float]]:
    """A `Trainer` ``compute_metrics`` reporting accuracy and the negative flips against the old model.

    Args:
        old_predictions: (N,) the old model's predictions on the evaluation set, in the evaluation order (the
            Trainer evaluates in dataset order).
        num_old_classes: count NFR and relative NFR on samples with a label < this only (the official protocol);
            None counts them on every sample.

    Returns:
        ``compute_metrics(eval_prediction)`` -> ``{"accuracy", "negative_flip_rate", "relative_negative_flip_rate",
        "old_error_rate", "new_error_rate"}`` (the flip metrics and error rates on the counted samples).

    Example:
        >>> Trainer(model, args, eval_dataset=test, compute_metrics=negative_flip_compute_metrics(old_pred, 5))
    """
    old = _as_labels(old_predictions, "old_predictions")
    if num_old_classes is not None:
        check_integers(num_old_classes=num_old_classes)
        check_positive_int(num_old_classes, "num_old_classes")

    def compute_metrics(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        new, labels = (
            real_array(logits, "predictions").argmax(axis=-1),
            _as_labels(prediction.label_ids, "label_ids", old.shape[0]),
        )
        counted = labels < num_old_classes if num_old_classes is not None else np.ones_like(labels, dtype=bool)
        if not counted.any():
            raise ValueError(
                f"no evaluation sample has a label < num_old_classes ({num_old_classes}): the flips are "
                f"counted on the old classes' samples only, and `label_ids` has none of them"
            )
        flips = negative_flip_metrics(old[counted], new[counted], labels[counted])
        return {"accuracy": float(np.mean(new == labels)), **flips}

    return compute_metrics
