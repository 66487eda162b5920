"""AUC-margin (AUC-M) loss module whose min-max game runs under any ordinary torch optimizer.

Yuan, Yan, Sonka, Yang, "Large-scale Robust Deep AUC Maximization: A New Surrogate Loss and Empirical Studies on
Medical Image Classification" (ICCV 2021, arXiv 2012.03173); the formulas are in
:mod:`hf_margin.functional.auc_margin`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from hf_margin._validation import check_choice, check_integers, check_number_in_range, check_positive_int
from hf_margin.functional.auc_margin import (
    SCORE_TYPES,
    VERSIONS,
    auc_margin_loss,
    check_imratio,
)


class _ReverseGradient(torch.autograd.Function):
    """Identity forward, negated gradient backward: a descent step on the input is an ascent step on the loss."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        return -grad_output


def reverse_gradient(tensor: Tensor) -> Tensor:
    """``tensor`` unchanged in the forward pass; its gradient is negated in the backward pass."""
    out: Tensor = _ReverseGradient.apply(tensor)
    return out


class AUCMarginLoss(nn.Module):
    """AUC-margin loss ``min_{w, a, b} max_{alpha >= 0} F`` of Yuan et al. (arXiv 2012.03173), for binary AUROC.

    Holds ``a``, ``b`` and ``alpha`` as parameters (zeros, shape (1,)). ``forward`` applies a gradient-reversal
    function to alpha, so after ``loss.backward()`` ``alpha.grad`` is ``-dF/dalpha`` and any optimizer's descent
    step on alpha is gradient *ascent* on F, while a, b (and the model) descend. Keep ``alpha >= 0`` by calling
    :meth:`project_` after each step, or once with :meth:`attach_projection` on the optimizer.

    Put the loss's parameters in the optimizer next to the model's, and keep weight decay off them (it would pull
    alpha, a and b towards 0)::

        loss_fn = AUCMarginLoss(margin=1.0, score_type="logits")
        optimizer = torch.optim.SGD(list(model.parameters()) + list(loss_fn.parameters()), lr=0.1)
        loss_fn.attach_projection(optimizer)
        loss = loss_fn(model(x).squeeze(-1), y)
        loss.backward(); optimizer.step(); optimizer.zero_grad()

    LibAUC's PESG optimizer does not use alpha's gradient: it updates
    ``alpha <- clamp(alpha + lr (2 (m + b - a) - 2 alpha), 0, 999)``. v1's exact gradient with the batch ratio is
    ``2 p(1-p) (m + E[h|-] - E[h|+] - alpha)``, so PESG's step is that gradient divided by p(1-p), with the running
    centres b, a in place of the batch means E[h|-], E[h|+] (the two agree at a = a*, b = b*; the fixed point
    alpha = m + b - a is the same). This module uses the plain autograd gradient instead, so its alpha moves
    p(1-p) times as fast as PESG's for the same learning rate; PESG's clamp at 999 is not applied.

    Args:
        margin: m >= 0 (1.0 in the paper, for scores in [0, 1]).
        imratio: v1's fixed positive ratio p in (0, 1) (one per label with ``num_labels > 1``); None (default) uses
            each batch's positive ratio.
        version: "v1" (with prior p, the paper's) or "v2" (prior-free).
        libauc_compat: v2 only: reproduce LibAUC 2.0.1's code rather than its docstring's formula.
        score_type: "probabilities" (scores already in [0, 1]) or "logits" (sigmoid applied inside).
        num_labels: 1 for a binary task; L > 1 for L labels (multi-hot labels) or L classes one-vs-rest (class-index
            labels): one (a, b, alpha) per label and the mean of the L binary losses (our extension, as LibAUC's
            ``MultiLabelAUCMLoss``, whose v1 code leaves the margin out of the alpha term: equal to ours at m = 1).

    Example:
        >>> loss_fn = AUCMarginLoss(score_type="logits")
        >>> loss_fn(torch.randn(8), torch.tensor([1, 0, 0, 0, 1, 0, 0, 0]))
    """

    def __init__(
        self,
        margin: float = 1.0,
        imratio: float | None = None,
        version: str = "v1",
        libauc_compat: bool = False,
        score_type: str = "probabilities",
        num_labels: int = 1,
    ) -> None:
        super().__init__()
        check_integers(num_labels=num_labels)
        check_positive_int(num_labels, "num_labels")
        check_number_in_range(margin, "margin", 0.0, float("inf"))
        check_choice(version, "version", VERSIONS)
        check_choice(score_type, "score_type", SCORE_TYPES)
        check_imratio(imratio, version, num_labels)
        if libauc_compat and num_labels > 1:
            raise ValueError(f"`libauc_compat` applies to the binary loss only, got num_labels={num_labels}")
        self.margin = margin
        self.imratio = imratio
        self.version = version
        self.libauc_compat = libauc_compat
        self.score_type = score_type
        self.num_labels = num_labels
        self.a = nn.Parameter(torch.zeros(num_labels))
        self.b = nn.Parameter(torch.zeros(num_labels))
        self.alpha = nn.Parameter(torch.zeros(num_labels))

    def forward(self, scores: Tensor, labels: Tensor) -> Tensor:
        """The loss (a 0-dim tensor) for (batch,) / (batch, 1) scores and (batch,) labels in {0, 1}, or (batch, L)
        scores and (batch, L) multi-hot labels or (batch,) class indices."""
        if scores.dim() == 2 and scores.shape[1] != self.num_labels:
            raise ValueError(
                f"`scores` must have {self.num_labels} column(s) (num_labels), got shape {tuple(scores.shape)}"
            )
        return auc_margin_loss(
            scores,
            labels,
            self.a,
            self.b,
            reverse_gradient(self.alpha),
            margin=self.margin,
            imratio=self.imratio,
            version=self.version,
            libauc_compat=self.libauc_compat,
            score_type=self.score_type,
        )

    @torch.no_grad()
    def project_(self) -> None:
        """Project alpha onto its feasible set ``alpha >= 0`` in place."""
        self.alpha.clamp_(min=0.0)

    def attach_projection(self, optimizer: torch.optim.Optimizer) -> RemovableHandle:
        """Call :meth:`project_` after every ``optimizer.step()``; returns the hook's handle (``.remove()`` it)."""

        def _project(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            self.project_()

        return optimizer.register_step_post_hook(_project)

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, imratio={self.imratio}, version={self.version!r}, "
            f"libauc_compat={self.libauc_compat}, score_type={self.score_type!r}, num_labels={self.num_labels}"
        )
