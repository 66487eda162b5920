"""Deprecated path: moved to `hf_margin.demo.data.icd_notes` (a demo data loader, not library code)."""

from typing import Any

from hf_margin._deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    from hf_margin.demo.data import icd_notes

    return moved_attribute(__name__, icd_notes, name)
