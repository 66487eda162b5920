"""Deprecated path: moved to `hf_margin.losses.equity` (loss weights, next to the focal loss they feed)."""

from typing import Any

from hf_margin._deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    from hf_margin.losses import equity

    return moved_attribute(__name__, equity, name)
