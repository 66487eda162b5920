"""Deprecated path: moved to `hf_margin.demo.data.co2` (a demo data loader, not library code)."""

from typing import Any

from hf_margin._deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    from hf_margin.demo.data import co2

    return moved_attribute(__name__, co2, name)
