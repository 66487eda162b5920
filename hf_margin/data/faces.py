"""Deprecated path: moved to `hf_margin.demo.data.faces` (a demo data loader, not library code)."""

from typing import Any

from hf_margin._deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    from hf_margin.demo.data import faces

    return moved_attribute(__name__, faces, name)
