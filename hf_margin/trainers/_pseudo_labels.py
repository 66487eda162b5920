"""Prediction margins and margin-threshold selection of pseudo-labels for `SelfTrainingLoop`.

Self-Training: A Survey (Amini, Feofanov, Pauletto, Hadjadj, Devijver, Maximov; arXiv 2202.12040): with
scores h(x, k), the prediction is ``y_hat = argmax_k h(x, k)`` and its margin
``m(x) = h(x, y_hat) - max_{k != y_hat} h(x, k)``; the points with ``m(x) >= theta`` get pseudo-label y_hat.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hf_margin._validation import check_choice, check_in_range

SCORES = ("probabilities", "logits")


def prediction_margins(logits: Tensor, score: str = "probabilities") -> tuple[Tensor, Tensor]:
    """The predicted class of every row and its margin over the runner-up class.

    Formula: ``m = h[y_hat] - max_{k != y_hat} h[k]`` with h the softmax probabilities (top-1 minus top-2
    probability, in [0, 1]) or the raw logits (in [0, inf)). One logit column (a binary sigmoid head) is read as
    the scores ``[0, z]``: the probability margin is ``|2 sigmoid(z) - 1|`` and the logit margin ``|z|``, the
    survey's unsigned score |h(x)| of the binary case.

    Args:
        logits: float tensor of shape (rows, classes), classes >= 1.
        score: "probabilities" (softmax, the default) or "logits".

    Returns:
        (predictions, margins): a long tensor and a float32 (or float64) tensor, both of shape (rows,).

    Example:
        >>> prediction_margins(torch.tensor([[2.0, 0.0, 0.0]]))[1]  # 0.7870 - 0.1065
        tensor([0.6805])
    """
    check_choice(score, "score", SCORES)
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() != 2 or logits.shape[1] < 1:
        got = f"shape {tuple(logits.shape)}, dtype {logits.dtype}" if isinstance(logits, Tensor) else type(logits)
        raise ValueError(f"`logits` must be a floating tensor of shape (rows, classes), got {got}")
    scores = logits.detach().float() if logits.dtype != torch.float64 else logits.detach()
    if scores.shape[1] == 1:
        scores = torch.cat([torch.zeros_like(scores), scores], dim=1)
    if score == "probabilities":
        scores = scores.softmax(dim=1)
    top = scores.topk(2, dim=1)
    return top.indices[:, 0], top.values[:, 0] - top.values[:, 1]


def check_threshold(value: float, name: str, score: str) -> None:
    """Raise unless `value` is a margin threshold for `score`: in [0, 1] for probabilities, finite >= 0 for logits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a float, got {type(value).__name__}")
    check_in_range(value, name, 0.0, 1.0 if score == "probabilities" else math.inf)
    if math.isinf(value):
        raise ValueError(f"`{name}` must be finite, got {value}")


def share_threshold(margins: Tensor, share: float) -> float:
    """The margin of the ``ceil(share * rows)``-th most confident row: the threshold that accepts that top share.

    Ties at the threshold are all accepted (the rule is ``m >= theta``), so slightly more rows may pass.

    Example:
        >>> share_threshold(torch.tensor([0.1, 0.9, 0.5, 0.3]), 0.5)
        0.5
    """
    check_in_range(share, "share", 1e-12, 1.0)
    if margins.numel() == 0:
        return math.inf
    count = min(margins.numel(), math.ceil(share * margins.numel()))
    return float(margins.topk(count).values[-1])
