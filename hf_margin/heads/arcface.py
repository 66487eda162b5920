"""ArcFace (additive angular margin) and insightface's combined margin head."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor

from hf_margin.functional.margin_heads import (
    Boundary,
    Gradient,
    Reduction,
    arcface_target,
    check_angular_margin,
    check_arcface_options,
    check_combined_margins,
    combined_target,
)
from hf_margin.heads.base import MarginHead


class ArcFaceHead(MarginHead):
    """ArcFace head: target logit ``s cos(theta_y + m)``, others ``s cos(theta_j)``.

    Paper: Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", arXiv 1801.07698.

    Args:
        embedding_size: dimension of the embeddings.
        num_classes: number of classes (identities).
        margin: additive angular margin ``m`` in radians (paper: 0.5).
        scale: logit scale ``s`` (paper: 64).
        boundary: what happens past ``theta = pi - m``: ``"threshold"`` (default; insightface's legacy rule and
            pytorch-metric-learning's: ``cos(theta) - m sin(m)``), ``"easy_margin"`` (margin only where
            ``cos > 0``) or ``"none"``.
        gradient: ``"exact"`` (default) or ``"straight_through"`` (insightface ``CombinedMarginLoss``: same
            value, gradient of the unmodified cosine).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> head = ArcFaceHead(512, 1000)
        >>> loss = head(embeddings, labels)          # training
        >>> logits = head.get_logits(embeddings)     # inference, no margin
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        margin: float = 0.5,
        scale: float = 64.0,
        boundary: Boundary = "threshold",
        gradient: Gradient = "exact",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(embedding_size, num_classes, scale, reduction)
        check_angular_margin(margin)
        check_arcface_options(boundary, gradient)
        self.margin = float(margin)
        self.boundary: Boundary = boundary
        self.gradient: Gradient = gradient

    def target_fn(self, embeddings: Tensor) -> Callable[[Tensor], Tensor]:
        return partial(arcface_target, margin=self.margin, boundary=self.boundary, gradient=self.gradient)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}, boundary={self.boundary}, gradient={self.gradient}"


class CombinedMarginHead(MarginHead):
    """insightface's combined margin: target logit ``s (cos(m1 theta_y + m2) - m3)``.

    ``(1, m, 0)`` is ArcFace, ``(1, 0, m)`` CosFace, ``(m, 0, 0)`` SphereFace-style. Unlike insightface's
    current ``CombinedMarginLoss``, which silently ignores m1 and m2 whenever ``m3 > 0``, all three margins
    always apply here.

    Paper: Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", arXiv 1801.07698
    (section on the combined margin).

    Args:
        embedding_size: dimension of the embeddings.
        num_classes: number of classes.
        m1: multiplicative angular margin (>= 1 in practice; 1 disables it).
        m2: additive angular margin in radians.
        m3: additive cosine margin.
        scale: logit scale ``s``.
        boundary: as in `ArcFaceHead`; only ``"none"`` when ``m1 != 1``. Defaults to ``"none"`` (insightface).
        gradient: ``"exact"`` or ``"straight_through"`` (insightface's choice, with ``boundary="none"``).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        m1: float = 1.0,
        m2: float = 0.5,
        m3: float = 0.0,
        scale: float = 64.0,
        boundary: Boundary = "none",
        gradient: Gradient = "exact",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(embedding_size, num_classes, scale, reduction)
        check_combined_margins(m1, m2, m3, boundary, gradient)
        self.m1, self.m2, self.m3 = float(m1), float(m2), float(m3)
        self.boundary: Boundary = boundary
        self.gradient: Gradient = gradient

    def target_fn(self, embeddings: Tensor) -> Callable[[Tensor], Tensor]:
        return partial(
            combined_target,
            m1=self.m1,
            m2=self.m2,
            m3=self.m3,
            boundary=self.boundary,
            gradient=self.gradient,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, m1={self.m1}, m2={self.m2}, m3={self.m3}, gradient={self.gradient}"
