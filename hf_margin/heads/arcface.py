"""ArcFace (additive angular margin) and insightface's combined margin head."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from torch import Tensor

from hf_margin._validation import check_choice, check_in_range
from hf_margin.functional.margin_heads import (
    BOUNDARIES,
    GRADIENTS,
    Boundary,
    Gradient,
    Reduction,
    arcface_target,
    combined_target,
)
from hf_margin.heads.base import MarginHead


def check_angular_margin(margin: float, name: str = "margin") -> None:
    """Margins are in radians; a value past pi is almost surely degrees (pytorch-metric-learning's unit)."""
    if margin > math.pi:
        raise ValueError(
            f"`{name}` is an angle in radians and must lie in [0, pi], got {margin}; "
            f"if this is degrees (as in pytorch-metric-learning), pass math.radians({margin})"
        )
    check_in_range(margin, name, 0.0, math.pi)


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
        check_choice(boundary, "boundary", BOUNDARIES)
        check_choice(gradient, "gradient", GRADIENTS)
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
        check_in_range(m1, "m1", 0.0, 10.0)
        check_angular_margin(m2, "m2")
        check_in_range(m3, "m3", -1.0, 2.0)
        check_choice(boundary, "boundary", BOUNDARIES)
        check_choice(gradient, "gradient", GRADIENTS)
        if m1 != 1.0 and boundary != "none":
            raise ValueError(f"`boundary` must be 'none' when m1 != 1 (got m1={m1}, boundary={boundary!r})")
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
