"""Deprecated path: moved to `hf_margin.demo.data.reuters` (a demo data loader, not library code)."""

from typing import Any

from hf_margin._deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    from hf_margin.demo.data import reuters

    return moved_attribute(__name__, reuters, name)
