"""Deprecated path: moved to `hf_margin.trainers.condensation` (a training loop, next to its kin)."""

from typing import Any

from hf_margin._deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    from hf_margin.trainers import condensation

    return moved_attribute(__name__, condensation, name)
