"""Classification heads with margins: class centres plus a loss, for face recognition and beyond."""

from __future__ import annotations

from typing import Any

from hf_margin.heads.adaface import AdaFaceHead
from hf_margin.heads.arcface import ArcFaceHead, CombinedMarginHead
from hf_margin.heads.base import MarginHead
from hf_margin.heads.cosface import CosFaceHead
from hf_margin.heads.elasticface import ElasticArcFaceHead, ElasticCosFaceHead
from hf_margin.heads.hyperspherical import HypersphericalHead
from hf_margin.heads.softmax import SoftmaxHead

HEAD_TYPES: dict[str, type[MarginHead]] = {
    "softmax": SoftmaxHead,
    "arcface": ArcFaceHead,
    "cosface": CosFaceHead,
    "combined": CombinedMarginHead,
    "elastic_arcface": ElasticArcFaceHead,
    "elastic_cosface": ElasticCosFaceHead,
    "adaface": AdaFaceHead,
    "hyperspherical": HypersphericalHead,
}


def build_head(head_type: str, embedding_size: int, num_classes: int, **kwargs: Any) -> MarginHead:
    """Build a head by name (`HEAD_TYPES`), e.g. ``build_head("arcface", 512, 1000, margin=0.5)``."""
    if head_type not in HEAD_TYPES:
        raise ValueError(f"`head_type` must be one of {', '.join(sorted(HEAD_TYPES))}; got {head_type!r}")
    try:
        return HEAD_TYPES[head_type](embedding_size, num_classes, **kwargs)
    except TypeError as error:
        raise TypeError(f"bad `head_kwargs` for head_type={head_type!r}: {error}") from error


def __getattr__(name: str) -> Any:
    # PartialFCHead builds on HEAD_TYPES above, so it is imported on first use (no import cycle).
    if name == "PartialFCHead":
        from hf_margin.heads.partial_fc import PartialFCHead

        return PartialFCHead
    raise AttributeError(f"module 'hf_margin.heads' has no attribute {name!r}")


__all__ = [
    "HEAD_TYPES",
    "AdaFaceHead",
    "ArcFaceHead",
    "CombinedMarginHead",
    "CosFaceHead",
    "ElasticArcFaceHead",
    "ElasticCosFaceHead",
    "HypersphericalHead",
    "MarginHead",
    "PartialFCHead",
    "SoftmaxHead",
    "build_head",
]
