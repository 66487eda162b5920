"""ElasticFace heads: ArcFace / CosFace with a per-sample margin drawn from N(m, sigma^2) at every step.

Paper: Boutros, Damer, Kirchbuchner, Kuijper, "ElasticFace: Elastic Margin Loss for Deep Face Recognition",
arXiv 2109.09416. Written from the paper's formulas and the defaults of its training configuration.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from hf_margin._validation import check_choice, check_flags
from hf_margin.functional.margin_heads import (
    BOUNDARIES,
    PLUS_ASSIGNMENTS,
    Boundary,
    PlusAssignment,
    Reduction,
    arcface_target,
    check_angular_margin,
    check_cosine_margin,
    check_elastic_margin_std,
    cosface_target,
    elastic_margins,
)
from hf_margin.heads.base import MarginHead


class _ElasticHead(MarginHead):
    """Shared margin drawing of the two ElasticFace heads."""

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        margin: float,
        std: float,
        scale: float,
        plus: bool,
        plus_assignment: PlusAssignment,
        reduction: Reduction,
    ) -> None:
        super().__init__(embedding_size, num_classes, scale, reduction)
        check_elastic_margin_std(std)
        check_flags(plus=plus)
        check_choice(plus_assignment, "plus_assignment", PLUS_ASSIGNMENTS)
        self.margin = float(margin)
        self.std = float(std)
        self.plus = bool(plus)
        self.plus_assignment: PlusAssignment = plus_assignment

    def margins(self, cos_y: Tensor) -> Tensor | float:
        """Per-sample margins in training mode; the mean margin in eval mode, so evaluation is deterministic."""
        if not self.training:
            return self.margin
        return elastic_margins(cos_y.detach(), self.margin, self.std, self.plus, self.plus_assignment)

    def extra_repr(self) -> str:
        plus = f", plus_assignment={self.plus_assignment}" if self.plus else ""
        return f"{super().extra_repr()}, margin={self.margin}, std={self.std}, plus={self.plus}{plus}"


class ElasticArcFaceHead(_ElasticHead):
    """ElasticArcFace: target logit ``s cos(theta_y + m_i)`` with ``m_i ~ N(m, std^2)`` drawn per sample and step.

    Args:
        embedding_size: dimension of the embeddings.
        num_classes: number of classes (identities).
        margin: mean angular margin ``m`` in radians (paper: 0.5).
        std: standard deviation of the margin; default 0.05, or 0.0175 with ``plus`` (the paper's configs).
            ``std=0`` is ArcFace exactly.
        scale: logit scale ``s`` (paper: 64).
        plus: ElasticFace+: sort the drawn margins and reassign them by each sample's target cosine.
        plus_assignment: ``"official_gather"`` (default; the official code's ``m_sorted[argsort(cos, desc)]``,
            which is not a rank match) or ``"rank"`` (the k-th largest cosine gets the k-th smallest margin).
        boundary: handling of ``theta + m > pi``; ``"none"`` (default) as the official code, or as `ArcFaceHead`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Margins are drawn from torch's global RNG in training mode only; in eval mode the mean margin is used.
    The head keeps no state of its own. A call rejected for its arguments draws nothing; a batch with
    non-finite values draws its margins as a finite batch of the same size would (its loss is non-finite), so
    the sequence of draws depends on the batch sizes only and runs stay reproducible from the seed; skipping
    the draws of a bad batch would need a host sync every step.

    Example:
        >>> head = ElasticArcFaceHead(512, 1000, plus=True)
        >>> loss = head(embeddings, labels)
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        margin: float = 0.5,
        std: float | None = None,
        scale: float = 64.0,
        plus: bool = False,
        plus_assignment: PlusAssignment = "official_gather",
        boundary: Boundary = "none",
        reduction: Reduction = "mean",
    ) -> None:
        check_angular_margin(margin)
        check_choice(boundary, "boundary", BOUNDARIES)
        std = (0.0175 if plus else 0.05) if std is None else std
        super().__init__(embedding_size, num_classes, margin, std, scale, plus, plus_assignment, reduction)
        self.boundary: Boundary = boundary

    def target_fn(self, embeddings: Tensor) -> Callable[[Tensor], Tensor]:
        return lambda cos_y: arcface_target(cos_y, self.margins(cos_y), self.boundary)


class ElasticCosFaceHead(_ElasticHead):
    """ElasticCosFace: target logit ``s (cos(theta_y) - m_i)`` with ``m_i ~ N(m, std^2)`` drawn per sample and step.

    Args:
        embedding_size: dimension of the embeddings.
        num_classes: number of classes (identities).
        margin: mean cosine margin ``m`` (paper: 0.35).
        std: standard deviation of the margin; default 0.05, or 0.02 with ``plus`` (the paper's configs).
            ``std=0`` is CosFace exactly.
        scale: logit scale ``s`` (paper: 64).
        plus: ElasticFace+ (see `ElasticArcFaceHead`).
        plus_assignment: ``"official_gather"`` (default) or ``"rank"``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        margin: float = 0.35,
        std: float | None = None,
        scale: float = 64.0,
        plus: bool = False,
        plus_assignment: PlusAssignment = "official_gather",
        reduction: Reduction = "mean",
    ) -> None:
        check_cosine_margin(margin)
        std = (0.02 if plus else 0.05) if std is None else std
        super().__init__(embedding_size, num_classes, margin, std, scale, plus, plus_assignment, reduction)

    def target_fn(self, embeddings: Tensor) -> Callable[[Tensor], Tensor]:
        return lambda cos_y: cosface_target(cos_y, self.margins(cos_y))
