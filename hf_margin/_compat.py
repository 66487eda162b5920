"""The host-library versions hf_margin's integrations are tested with, and a warning when one lies outside them.

The ranges are the dependency ranges of pyproject.toml (a test keeps the two equal): the lower bound is the oldest
version `scripts/compat.sh` found the integration tests passing with, the upper bound the next major version.
docs/installation.md shows the tested matrix. An integration calls `check_host_versions` when it is imported
(`hf_margin._extras.require` does it for the optional libraries); each library outside its range is reported
once per process, as an `UntestedVersionWarning` naming the installed version and the tested range.
"""

from __future__ import annotations

import importlib.metadata
import warnings

from packaging.version import InvalidVersion, Version

# distribution name -> (oldest tested, first untested); keep equal to pyproject.toml's ranges.
TESTED_RANGES: dict[str, tuple[str, str]] = {
    "transformers": ("5.20", "6"),
    "peft": ("0.21", "1"),
    "trl": ("1.16", "2"),
    "sentence-transformers": ("6.0", "7"),
    "accelerate": ("1.10.1", "2"),
    "datasets": ("4.7", "6"),
}

_MODULE_TO_DISTRIBUTION = {"sentence_transformers": "sentence-transformers"}
_reported: set[str] = set()


class UntestedVersionWarning(UserWarning):
    """An installed host library is outside the version range hf_margin's integrations are tested with."""


def range_specifier(name: str) -> str:
    """The tested range of a host library as a requirement specifier, e.g. ``>=1.15,<2``."""
    low, high = TESTED_RANGES[name]
    return f">={low},<{high}"


def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution` (a pip name, e.g. ``sentence-transformers``), None when it is not
    installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_host_versions(*modules: str) -> None:
    """Warn once per library (and process) for each of `modules` installed at a version outside its tested range.

    Names without a tested range (e.g. ``sklearn``) and libraries that are not installed are skipped.
    """
    for module in modules:
        name = _MODULE_TO_DISTRIBUTION.get(module, module)
        if name not in TESTED_RANGES or name in _reported:
            continue
        installed = installed_version(name)
        if installed is None:
            continue
        low, high = TESTED_RANGES[name]
        try:
            inside = Version(low) <= Version(installed) < Version(high)
        except InvalidVersion:
            inside = False
        if not inside:
            _reported.add(name)
            warnings.warn(
                f"{name} {installed} is outside the range hf_margin's integrations are tested with "
                f"({name}{range_specifier(name)}; see docs/installation.md): it may work, or fail deep inside a run",
                UntestedVersionWarning,
                stacklevel=2,
            )
