"""AnyLoss: a classification metric turned into a differentiable batch-level loss.

Han, Moniz, Chawla, "AnyLoss: Transforming Classification Metrics into Loss Functions" (arXiv 2405.14745).

Binary case (the paper). With ``p_i = sigmoid(logit_i)`` (or given probabilities) the amplifying sigmoid

    A(p) = 1 / (1 + exp(-L (p - 0.5)))          (L = 73 in the original notebooks; 2..70 suggested later)

pushes each probability towards 0 or 1, and ``y^_i = A(p_i)`` fills a soft confusion matrix over the batch
(N samples, N1 = sum y positives, N0 = N - N1 negatives):

    TP = sum y y^,   FN = N1 - TP,   FP = sum y^ - TP,   TN = N - N1 - sum y^ + TP.

The loss is ``1 - metric`` on these soft counts:

    accuracy            1 - (TP + TN) / N
    f_beta              1 - (1 + beta^2) TP / (beta^2 N1 + sum y^ + eps)
    g_mean              1 - sqrt(TP TN / (N1 N0 + eps) + eps)
    balanced_accuracy   1 - (N0 TP + N1 TN) / (2 N1 N0 + eps)

The four cells are computed as direct sums (``TP = sum y y^``, ``FN = sum y (1 - y^)``, ``FP = sum (1 - y) y^``,
``TN = sum (1 - y)(1 - y^)``), which equal the paper's expressions exactly in real arithmetic but stay >= 0 and are
exactly 0 for a class missing from the batch, so no cancellation error can leak into a ratio.

``eps`` (1e-5 by default, as in the authors' later extension code) keeps every ratio and the square root finite.
Consequences, documented rather than hidden:

- F_beta and balanced accuracy stay in [0, 1]; accuracy too. The G-mean loss can dip by about ``eps / 2`` below 0 for a
  perfect batch, and it differs from ``1 - G`` by at most ``sqrt(eps)`` (≈ 0.003 at G = 0, ≈ eps / (2 G) otherwise).
- Degenerate batch (only one class present): nothing is NaN. Then TP = 0 (no positives) or TN = 0 (no negatives).
  f_beta with no positives is 1 (F is 0 whatever the predictions); balanced_accuracy is 1 and g_mean is
  ``1 - sqrt(eps)`` (≈ 0.9968) with either class missing. Each of these is constant in the predictions, so such a
  batch gives zero gradient. f_beta with no negatives is still informative (it rewards TP, penalises FN), and
  accuracy always is.

Multi-class (our extension, not in the paper): logits (batch, K) with integer labels; ``p = softmax(logits)``
(or given probabilities), ``y^_ik = A(p_ik)``, one-vs-rest soft confusion per class k over the batch, the metric
per class, and the macro average over the classes that occur in the batch's labels (absent classes would add a
constant without gradient). Scores of shape (batch, 1) are binary; (batch, 2) is the two-class softmax case.
The hard limit (L -> inf) of class k's prediction is ``p_ik > 0.5``, which implies
argmax, but a sample without any probability above 0.5 counts as predicted-negative for every class. The macro
one-vs-rest accuracy is not multi-class accuracy; prefer f_beta, g_mean or balanced_accuracy for K > 2.

The loss is batch-level (a scalar, no per-sample reduction): batches should be large enough to hold both classes.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_choice, check_class_labels, check_positive_number
from hf_margin.functional._nonfinite import propagate_non_finite

Metric = Literal["accuracy", "f_beta", "g_mean", "balanced_accuracy"]
InputKind = Literal["logits", "probabilities"]

METRICS: tuple[str, ...] = ("accuracy", "f_beta", "g_mean", "balanced_accuracy")
INPUT_KINDS: tuple[str, ...] = ("logits", "probabilities")
DEFAULT_AMPLIFICATION = 73.0  # the original notebooks' L
DEFAULT_EPS = 1e-5  # the authors' extension code


class SoftConfusion(NamedTuple):
    """Soft confusion-matrix cells: scalars (binary) or (num_classes,) one-vs-rest cells (multi-class)."""

    tp: Tensor
    fn: Tensor
    fp: Tensor
    tn: Tensor


def amplifying_sigmoid(probabilities: Tensor, amplification: float = DEFAULT_AMPLIFICATION) -> Tensor:
    """``A(p) = 1 / (1 + exp(-L (p - 0.5)))``: A(0.5) = 0.5, increasing, towards a 0/1 step at 0.5 as L grows."""
    check_positive_number(amplification, "amplification")
    return torch.sigmoid(amplification * (probabilities - 0.5))


def soft_confusion_matrix(
    scores: Tensor,
    labels: Tensor,
    amplification: float = DEFAULT_AMPLIFICATION,
    inputs: InputKind | str = "logits",
) -> SoftConfusion:
    """AnyLoss's soft TP, FN, FP, TN over the batch.

    Args:
        scores: binary: (batch,) or (batch, 1) logits or probabilities of the positive class; multi-class:
            (batch, num_classes) logits (softmax is applied) or probabilities.
        labels: binary: (batch,) (or the shape of `scores`) in {0, 1}; multi-class: (batch,) integer classes.
        amplification: L > 0 of the amplifying sigmoid.
        inputs: "logits" or "probabilities".

    Returns:
        The four cells, each a scalar (binary) or of shape (num_classes,) (multi-class, one-vs-rest).
    """
    predictions, targets = _soft_predictions(scores, labels, amplification, inputs)
    return _confusion(predictions, targets)


def anyloss(
    scores: Tensor,
    labels: Tensor,
    metric: Metric | str = "f_beta",
    *,
    beta: float = 1.0,
    amplification: float = DEFAULT_AMPLIFICATION,
    inputs: InputKind | str = "logits",
    eps: float = DEFAULT_EPS,
) -> Tensor:
    """AnyLoss ``1 - metric(soft confusion matrix)`` for a batch (a scalar; see the module docstring).

    Args:
        scores: binary: (batch,) or (batch, 1) logits (or probabilities) of the positive class; multi-class:
            (batch, num_classes) logits (softmax is applied) or probabilities (our one-vs-rest extension).
        labels: binary: (batch,) (or the shape of `scores`) in {0, 1}; multi-class: (batch,) integer classes.
        metric: "accuracy", "f_beta", "g_mean" or "balanced_accuracy".
        beta: beta > 0 of F_beta (1 is F1); ignored by the other metrics.
        amplification: L > 0 of the amplifying sigmoid (73 in the paper's notebooks).
        inputs: "logits" (sigmoid / softmax applied here) or "probabilities" (in [0, 1]).
        eps: > 0, keeps ratios and the G-mean's square root finite on degenerate batches.

    Returns:
        A scalar loss; the macro average over the classes present in `labels` for multi-class input.
    """
    check_choice(metric, "metric", METRICS)
    check_positive_number(beta, "beta")
    check_positive_number(eps, "eps")
    predictions, targets = _soft_predictions(scores, labels, amplification, inputs)
    tp, _, fp, tn = _confusion(predictions, targets)
    positives = targets.sum(0)  # N1 (per class for multi-class)
    negatives = targets.shape[0] - positives  # N0
    if metric == "accuracy":
        score = (tp + tn) / targets.shape[0]
    elif metric == "f_beta":
        beta2 = beta * beta
        score = (1.0 + beta2) * tp / (beta2 * positives + (tp + fp) + eps)
    elif metric == "g_mean":
        score = torch.sqrt(tp * tn / (positives * negatives + eps) + eps)
    else:
        score = (negatives * tp + positives * tn) / (2.0 * positives * negatives + eps)
    loss = 1.0 - score
    if loss.dim() != 0:
        present = positives > 0  # at least one class is present: the batch is non-empty
        loss = loss[present].mean()
    # The sigmoid saturates: an inf score would otherwise give a plausible finite loss.
    return propagate_non_finite(loss, scores)


def _soft_predictions(scores: Tensor, labels: Tensor, amplification: float, inputs: str) -> tuple[Tensor, Tensor]:
    """Amplified predictions and 0/1 targets, both (batch,) (binary) or (batch, num_classes) (multi-class)."""
    check_choice(inputs, "inputs", INPUT_KINDS)
    check_positive_number(amplification, "amplification")
    if not isinstance(scores, Tensor) or not scores.is_floating_point():
        raise TypeError(f"`scores` must be a floating-point torch.Tensor, got {getattr(scores, 'dtype', type(scores))}")
    if scores.dim() not in (1, 2) or scores.shape[0] == 0:
        raise ValueError(
            "`scores` must have shape (batch,) or (batch, 1) for binary, or (batch, num_classes) for multi-class, "
            f"with batch >= 1; got {tuple(scores.shape)}"
        )
    if inputs == "probabilities" and ((scores < 0) | (scores > 1)).any():
        raise ValueError('`scores` must lie in [0, 1] with inputs="probabilities"; pass inputs="logits" for logits')
    scores = at_least_float32(scores)
    binary = scores.dim() == 1 or scores.shape[1] == 1
    if binary:
        targets = _binary_targets(labels, scores)
        flat = scores.reshape(-1)
        probabilities = torch.sigmoid(flat) if inputs == "logits" else flat
    else:
        check_class_labels(labels, scores.shape[0], scores.shape[1])
        targets = F.one_hot(labels, scores.shape[1]).to(scores.dtype)
        probabilities = torch.softmax(scores, dim=1) if inputs == "logits" else scores
    return amplifying_sigmoid(probabilities, amplification), targets


def _binary_targets(labels: Tensor, scores: Tensor) -> Tensor:
    if not isinstance(labels, Tensor):
        raise TypeError(f"`labels` must be a torch.Tensor of 0/1 labels, got {type(labels).__name__}")
    if tuple(labels.shape) not in ((scores.shape[0],), tuple(scores.shape)):
        raise ValueError(
            f"`labels` must have shape ({scores.shape[0]},) (binary, one 0/1 label per sample), "
            f"got {tuple(labels.shape)}"
        )
    if ((labels != 0) & (labels != 1)).any():
        raise ValueError("`labels` must hold only 0 and 1 for binary AnyLoss (pass (batch, K) scores for K classes)")
    return labels.reshape(-1).to(scores.dtype)


def _confusion(predictions: Tensor, targets: Tensor) -> SoftConfusion:
    # Direct sums over the batch (dim 0): equal to the paper's N1 - TP, sum y^ - TP, N - N1 - sum y^ + TP.
    misses = 1.0 - predictions
    others = 1.0 - targets
    return SoftConfusion(
        tp=(targets * predictions).sum(0),
        fn=(targets * misses).sum(0),
        fp=(others * predictions).sum(0),
        tn=(others * misses).sum(0),
    )
