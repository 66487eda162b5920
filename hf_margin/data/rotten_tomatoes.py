"""Deprecated path: moved to `hf_margin.demo.data.rotten_tomatoes` (a demo data loader, not library code)."""

from typing import Any

from hf_margin._deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    from hf_margin.demo.data import rotten_tomatoes

    return moved_attribute(__name__, rotten_tomatoes, name)
