"""Lazy imports of optional dependencies, failing with the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the `pip install` that brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or raise naming ``pip install 'hf-margin[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{purpose} needs `{module}`: install it with `pip install 'hf-margin[{extra}]'`"
        ) from error
