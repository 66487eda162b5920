"""Lazy imports of optional dependencies, failing with the extra to install."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from types import ModuleType

from hf_margin._compat import check_host_versions


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the `pip install` that brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or raise naming ``pip install 'hf-margin[extra]'``; warn once if it (or transformers, which
    every integration builds on) is outside its tested version range (`hf_margin._compat`)."""
    try:
        imported = importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{purpose} needs `{module}`: install it with `pip install 'hf-margin[{extra}]'`"
        ) from error
    check_host_versions(module.split(".")[0], "transformers")
    return imported


# Import names that differ from their distribution's name on the package index.
_DISTRIBUTION_OF_MODULE = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml"}


def _normalised(name: str) -> str:
    return name.lower().replace("_", "-")


def extra_for(module: str) -> str | None:
    """The smallest hf-margin extra that installs top-level `module` (None when no extra does)."""
    wanted = _normalised(_DISTRIBUTION_OF_MODULE.get(module, module))
    try:
        requirements = importlib.metadata.requires("hf-margin") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    members: dict[str, set[str]] = {}
    for requirement in requirements:
        name, _, marker = requirement.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([\w-]+)['\"]", marker)
        if extra:
            distribution = re.split(r"[\s\[<>=!~]", name.strip(), maxsplit=1)[0]
            members.setdefault(extra.group(1), set()).add(_normalised(distribution))
    having = [extra for extra, names in members.items() if wanted in names]
    return min(having, key=lambda extra: len(members[extra]), default=None)
