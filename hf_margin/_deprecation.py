"""Deprecation shims for import paths that moved: the old module forwards attribute look-ups with a warning."""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any


def moved_attribute(old_path: str, new_module: ModuleType, name: str) -> Any:
    """`name` from `new_module`, warning that `old_path` moved there (for an old module's `__getattr__`).

    Dunder look-ups (``__path__``, ``__file__``, ...) and names the new module lacks raise `AttributeError`
    without a warning, as a plain module would.
    """
    if name.startswith("__") or not hasattr(new_module, name):
        raise AttributeError(f"module {old_path!r} has no attribute {name!r}")
    warnings.warn(
        f"`{old_path}` moved to `{new_module.__name__}`: import `{name}` from `{new_module.__name__}` "
        f"(the old path will be removed in a future release)",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(new_module, name)
