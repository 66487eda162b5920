"""Deprecated path: moved to `hf_margin.tuners.petal.quality` (PETAL's quality scores, next to PETAL)."""

from typing import Any

from hf_margin._deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    from hf_margin.tuners.petal import quality

    return moved_attribute(__name__, quality, name)
