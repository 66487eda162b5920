"""AUC-margin (AUC-M) loss for binary AUROC maximisation, and its closed-form saddle point.

Yuan, Yan, Sonka, Yang, "Large-scale Robust Deep AUC Maximization: A New Surrogate Loss and Empirical Studies on
Medical Image Classification" (ICCV 2021, arXiv 2012.03173). With h the score in [0, 1] (normally
``sigmoid(logit)``), y in {0, 1}, p the positive ratio and m the margin, the min-max objective is
``min_{w, a, b} max_{alpha >= 0} F``:

- ``v1`` (the paper's, with prior p); every indicator term is a mean over the whole batch::

      F = mean[(1-p)(h-a)^2 1[y=1] + p(h-b)^2 1[y=0]
               + 2 alpha (p(1-p) m + p h 1[y=0] - (1-p) h 1[y=1])] - p(1-p) alpha^2

- ``v2`` (prior-free, LibAUC's docstring)::

      F = E_{y=1}[(h-a)^2] + E_{y=0}[(h-b)^2] + 2 alpha (m + E_{y=0}[h] - E_{y=1}[h]) - alpha^2

  with conditional means = masked sum / number of examples of that class (a class absent from the batch
  contributes 0, never NaN).

p is the batch's positive ratio (``imratio=None``; what LibAUC's ``AUCMLoss.forward(auto=True)``, its default, does
on every call) or a fixed training-set ``imratio`` in (0, 1) (LibAUC: ``AUCMLoss(imratio=p)`` *and*
``forward(..., auto=False)``).

Saddle point, for v1 with the batch ratio and for v2: ``a* = E[h|+]``, ``b* = E[h|-]``,
``alpha* = max(0, m - E[h|+] + E[h|-])``; v1's value there is
``p(1-p) [Var(h|+) + Var(h|-) + (m - E[h|+] + E[h|-])_+^2]`` (population variances), v2's the same without the
factor p(1-p). See :func:`auc_margin_saddle`.

Discrepancy with LibAUC 2.0.1 (``libauc.losses.AUCMLoss``), reproduced only under ``libauc_compat=True``: its v2
code computes the alpha term as ``mean(h 1[y=0] - mean(h 1[y=1]))``, i.e. ``(N-/N) E[h|-] - E[h|+]``, not the
docstring's ``E[h|-] - E[h|+]``: it differs by ``-2 alpha (N+/N) E[h|-]`` and is not invariant to shifting all
scores (and a, b) by a constant. Its "mean" is also ``sum / count_nonzero(values)``, so an example of the class
whose masked value is exactly 0 (e.g. ``h == a``) is left out of the count. Under ``libauc_compat`` a count of 0
gives 0 where LibAUC divides 0 by 0 (NaN). v1's code agrees with its formula; ``libauc_compat`` does not change v1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_choice, check_number_in_range
from hf_margin.functional._nonfinite import nan_where_infinite

VERSIONS = ("v1", "v2")
SCORE_TYPES = ("probabilities", "logits")


class AUCMarginSaddle(NamedTuple):
    """Closed-form saddle point ``(a*, b*, alpha*)`` of the AUC-margin objective for fixed scores (0-dim tensors)."""

    a: Tensor
    b: Tensor
    alpha: Tensor


def auc_margin_loss(
    scores: Tensor,
    labels: Tensor,
    a: Tensor | float,
    b: Tensor | float,
    alpha: Tensor | float,
    margin: float = 1.0,
    imratio: float | Sequence[float] | None = None,
    version: str = "v1",
    libauc_compat: bool = False,
    score_type: str = "probabilities",
) -> Tensor:
    """AUC-margin loss ``F(h, a, b, alpha)`` of Yuan et al. (arXiv 2012.03173): min over (h, a, b), max over alpha.

    This function is plain ``F``: its gradient w.r.t. alpha is the ascent direction. For training with an ordinary
    optimizer use :class:`hf_margin.losses.auc_margin.AUCMarginLoss`, which reverses alpha's gradient and projects
    alpha onto ``alpha >= 0``.

    Multi-label and one-vs-rest multi-class (our extension, as LibAUC's ``MultiLabelAUCMLoss``): with L score
    columns each column is its own binary AUC-M problem with its own a, b, alpha (and p), and the loss is the mean
    over the L columns.

    Args:
        scores: (batch,) or (batch, 1) scores for a binary task, (batch, L) for L labels: probabilities h in
            [0, 1], or logits if ``score_type="logits"``.
        labels: binary: (batch,) or (batch, 1) labels in {0, 1}; L labels: (batch, L) multi-hot 0/1 labels, or
            (batch,) class indices in [0, L) (one-vs-rest).
        a: the positives' score centre(s): a scalar, or a tensor of shape (1,) / (L,).
        b: the negatives' score centre(s), shaped as `a`.
        alpha: the dual variable(s) (>= 0 in the min-max problem), shaped as `a`.
        margin: m >= 0 (1.0 in the paper, for scores in [0, 1]).
        imratio: fixed positive ratio p in (0, 1) for v1 (one number, or one per label); None uses the batch's
            positive ratio. Not used by v2 (giving it with v2 is an error).
        version: "v1" (with prior p) or "v2" (prior-free).
        libauc_compat: binary v2 only: reproduce LibAUC 2.0.1's ``AUCMLoss`` code (see the module docstring)
            instead of its formula.
        score_type: "probabilities" (h used as given) or "logits" (h = sigmoid(scores)).

    Returns:
        The loss, a 0-dim tensor (float32, or float64 for float64 scores).
    """
    h, pos = _prepare(scores, labels, score_type)
    num_labels = h.shape[1]
    check_number_in_range(margin, "margin", 0.0, float("inf"))
    check_choice(version, "version", VERSIONS)
    check_imratio(imratio, version, num_labels)
    if libauc_compat and num_labels > 1:
        raise ValueError(f"`libauc_compat` applies to the binary loss only, got {num_labels} score columns")
    a_, b_, alpha_ = (_per_label(value, name, h) for value, name in ((a, "a"), (b, "b"), (alpha, "alpha")))
    neg = 1.0 - pos
    if version == "v1":
        p = (
            pos.mean(0)
            if imratio is None
            else torch.tensor(_as_list(imratio, num_labels), dtype=h.dtype, device=h.device)
        )
        q = p * (1.0 - p)
        per_label = (
            (1.0 - p) * torch.mean((h - a_) ** 2 * pos, 0)
            + p * torch.mean((h - b_) ** 2 * neg, 0)
            + 2.0 * alpha_ * (q * margin + torch.mean(p * h * neg - (1.0 - p) * h * pos, 0))
            - q * alpha_**2
        )
    elif libauc_compat:
        h, pos, neg = h[:, 0], pos[:, 0], neg[:, 0]
        per_label = (
            _mean_nonzero((h - a_) ** 2 * pos)
            + _mean_nonzero((h - b_) ** 2 * neg)
            + 2.0 * alpha_ * (margin + _mean_nonzero(h * neg - _mean_nonzero(h * pos)))
            - alpha_**2
        )
    else:
        n_pos, n_neg = pos.sum(0).clamp_min(1.0), neg.sum(0).clamp_min(1.0)
        mean_pos, mean_neg = (h * pos).sum(0) / n_pos, (h * neg).sum(0) / n_neg
        per_label = (
            ((h - a_) ** 2 * pos).sum(0) / n_pos
            + ((h - b_) ** 2 * neg).sum(0) / n_neg
            + 2.0 * alpha_ * (margin + mean_neg - mean_pos)
            - alpha_**2
        )
    return per_label.mean()


def auc_margin_saddle(
    scores: Tensor,
    labels: Tensor,
    margin: float = 1.0,
    imratio: float | Sequence[float] | None = None,
    score_type: str = "probabilities",
) -> AUCMarginSaddle:
    """Closed-form saddle point of :func:`auc_margin_loss` for fixed scores (no gradient flows through it).

    ``a* = E[h|+]``, ``b* = E[h|-]``, ``alpha* = max(0, m - E[h|+] + E[h|-])`` for v2 and for v1 with the batch's
    positive ratio. With a fixed ``imratio`` p (v1) alpha* becomes
    ``max(0, m + (N-/N) E[h|-] / (1-p) - (N+/N) E[h|+] / p)``, the same when p = N+/N. With L labels, per label.

    Args:
        scores: (batch,) or (batch, 1) probabilities (or (batch, L)), or logits with ``score_type="logits"``.
        labels: as :func:`auc_margin_loss`; both classes must be present for every label.
        margin: m >= 0.
        imratio: v1's fixed positive ratio(s) in (0, 1), or None for the batch ratio (and for v2).
        score_type: "probabilities" or "logits".

    Returns:
        ``AUCMarginSaddle(a, b, alpha)``, three detached tensors: 0-dim for a binary task, (L,) for L labels.
    """
    with torch.no_grad():
        h, pos = _prepare(scores, labels, score_type)
        check_number_in_range(margin, "margin", 0.0, float("inf"))
        check_imratio(imratio, "v1", h.shape[1])
        n = pos.shape[0]
        n_pos = pos.sum(0)
        n_neg = n - n_pos
        if (n_pos == 0).any() or (n_neg == 0).any():
            raise ValueError(
                f"`labels` must contain both classes (of every label) for the saddle point, got positives per label "
                f"{n_pos.long().tolist()} of {n}"
            )
        mean_pos = (h * pos).sum(0) / n_pos
        mean_neg = (h * (1.0 - pos)).sum(0) / n_neg
        if imratio is None:
            gap = margin - mean_pos + mean_neg
        else:
            p = torch.tensor(_as_list(imratio, h.shape[1]), dtype=h.dtype, device=h.device)
            gap = margin + (n_neg / n) * mean_neg / (1.0 - p) - (n_pos / n) * mean_pos / p
        shape = () if h.shape[1] == 1 else (h.shape[1],)
        return AUCMarginSaddle(mean_pos.reshape(shape), mean_neg.reshape(shape), gap.clamp_min(0.0).reshape(shape))


def _mean_nonzero(values: Tensor) -> Tensor:
    # LibAUC's `sum / count_nonzero`, with 0 instead of 0/0 = NaN when every value is 0.
    return values.sum() / torch.count_nonzero(values).clamp_min(1).to(values.dtype)


def _prepare(scores: Tensor, labels: Tensor, score_type: str) -> tuple[Tensor, Tensor]:
    """Validate; return h (batch, L) in at least float32 and the positives' 0/1 mask (batch, L) in the same dtype."""
    check_choice(score_type, "score_type", SCORE_TYPES)
    if not isinstance(scores, Tensor):
        raise TypeError(
            f"`scores` must be a torch.Tensor of shape (batch,), (batch, 1) or (batch, labels), got "
            f"{type(scores).__name__}"
        )
    if not scores.is_floating_point():
        raise TypeError(f"`scores` must be a floating-point tensor, got dtype {scores.dtype}")
    if scores.dim() not in (1, 2) or scores.shape[0] == 0 or scores.numel() == 0:
        raise ValueError(
            f"`scores` must have shape (batch,), (batch, 1) or (batch, labels) with batch >= 1, got "
            f"{tuple(scores.shape)}"
        )
    h = at_least_float32(scores.reshape(scores.shape[0], -1))
    batch, num_labels = h.shape
    if not isinstance(labels, Tensor):
        raise TypeError(f"`labels` must be a torch.Tensor of 0/1 labels, got {type(labels).__name__}")
    if num_labels > 1 and tuple(labels.shape) == (batch,):
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(
                f"`labels` of shape ({batch},) with {num_labels} score columns must be integer class "
                f"indices (one-vs-rest), got dtype {labels.dtype}"
            )
        if labels.min() < 0 or labels.max() >= num_labels:
            raise ValueError(
                f"`labels` (class indices) must lie in [0, {num_labels - 1}], got values in "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        labels = torch.nn.functional.one_hot(labels.long(), num_labels)
    expected = ((batch,), (batch, 1)) if num_labels == 1 else ((batch, num_labels),)
    if tuple(labels.shape) not in expected:
        raise ValueError(
            f"`labels` must have shape {' or '.join(map(str, expected))} to match `scores` {tuple(scores.shape)}"
            f"{f' (or ({batch},) class indices)' if num_labels > 1 else ''}, got {tuple(labels.shape)}"
        )
    if ((labels != 0) & (labels != 1)).any():
        bad = labels[(labels != 0) & (labels != 1)].unique()[:5].tolist()
        raise ValueError(f"`labels` must hold only 0 (negative) and 1 (positive), got values such as {bad}")
    if score_type == "logits":
        h = nan_where_infinite(h, torch.sigmoid(h))  # an infinite logit is a diverged model, not a certainty
    elif ((h < 0) | (h > 1)).any():
        raise ValueError(
            f"`scores` must lie in [0, 1] with score_type='probabilities' (pass score_type='logits' for raw "
            f"logits), got values in [{float(h.min())}, {float(h.max())}]"
        )
    return h, (labels.reshape(batch, num_labels) == 1).to(h.dtype)


def _as_list(imratio: float | Sequence[float], num_labels: int) -> list[float]:
    return [float(imratio)] * num_labels if isinstance(imratio, (int, float)) else [float(p) for p in imratio]


def check_imratio(imratio: float | Sequence[float] | None, version: str, num_labels: int | None = None) -> None:
    """Raise unless `imratio` is None, or (v1 only) a number in (0, 1) or one such number per label."""
    if imratio is None:
        return
    if version != "v1":
        raise ValueError(f"`imratio` applies only to version='v1' (v2 is prior-free), got imratio={imratio!r}")
    values = [imratio] if isinstance(imratio, (int, float)) else list(imratio)
    if any(isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p < 1.0 for p in values):
        raise ValueError(
            f"`imratio` must be a number in (0, 1) (the positive ratio), one per label, or None, got {imratio!r}"
        )
    if num_labels is not None and not isinstance(imratio, (int, float)) and len(values) != num_labels:
        raise ValueError(f"`imratio` must have one ratio per label ({num_labels}), got {len(values)}")


def _per_label(value: Tensor | float, name: str, like: Tensor) -> Tensor:
    """`value` as an (L,) tensor (L = like's columns) with `like`'s dtype and device (differentiable for tensors)."""
    num_labels = like.shape[1]
    if isinstance(value, Tensor):
        if value.dim() > 1 or value.numel() not in (1, num_labels):
            raise ValueError(
                f"`{name}` must be a scalar or a tensor of shape (1,) or ({num_labels},) (one per "
                f"label), got shape {tuple(value.shape)}"
            )
        return value.reshape(-1).to(like).expand(num_labels)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number or a tensor of shape (1,) or (labels,), got {type(value).__name__}")
    return torch.full((num_labels,), float(value), dtype=like.dtype, device=like.device)
