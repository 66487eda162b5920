"""Tested version ranges: pyproject's ranges are hf_margin._compat's, and a host library outside its range is
reported once, at import of the integration, naming the version and the range."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import warnings
from pathlib import Path

import pytest
import tomllib

from hf_margin import _compat
from hf_margin._compat import TESTED_RANGES, UntestedVersionWarning, check_host_versions, range_specifier
from hf_margin._extras import require

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _pyproject_ranges() -> dict[str, set[str]]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    ranges: dict[str, set[str]] = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?\s*(.*)", requirement)
        assert match, requirement
        ranges.setdefault(match.group(1).lower(), set()).add(match.group(3).replace(" ", ""))
    return ranges


def test_pyproject_pins_are_the_range_specifiers() -> None:
    ranges = _pyproject_ranges()
    for name in TESTED_RANGES:
        assert ranges.get(name) == {range_specifier(name)}, name


def test_installed_versions_are_inside_the_range_specifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default environment (CI) is one of the tested sets."""
    monkeypatch.setattr(_compat, "_reported", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntestedVersionWarning)
        check_host_versions(*TESTED_RANGES)


@pytest.fixture
def fake_versions(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    versions: dict[str, str] = {}
    real = importlib.metadata.version
    monkeypatch.setattr(_compat.importlib.metadata, "version", lambda name: versions.get(name) or real(name))
    monkeypatch.setattr(_compat, "_reported", set())
    return versions


@pytest.mark.parametrize(
    ("name", "version"),
    [("trl", "1.15.0"), ("trl", "2.0.0"), ("peft", "0.20.0"), ("transformers", "6.0.0"), ("datasets", "4.6.1")],
)
def test_outside_the_range_warns_once_naming_version_and_range(
    fake_versions: dict[str, str], name: str, version: str
) -> None:
    fake_versions[name] = version
    with pytest.warns(UntestedVersionWarning) as caught:
        check_host_versions(name.replace("-", "_"))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"{name} {version} is outside" in message and f"{name}{range_specifier(name)}" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntestedVersionWarning)
        check_host_versions(name)  # once per process


def test_inside_the_range_and_unknown_or_missing_libraries_are_silent(fake_versions: dict[str, str]) -> None:
    fake_versions["trl"] = TESTED_RANGES["trl"][0] + ".0"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntestedVersionWarning)
        check_host_versions("trl", "sklearn", "no_such_library")


def test_an_unparsable_version_warns(fake_versions: dict[str, str]) -> None:
    fake_versions["accelerate"] = "not-a-version"
    with pytest.warns(UntestedVersionWarning, match="accelerate not-a-version"):
        check_host_versions("accelerate")


def test_importing_an_integration_warns(fake_versions: dict[str, str]) -> None:
    """`require` (every optional integration) and the PETAL and preference-trainer modules check at import."""
    pytest.importorskip("trl")
    fake_versions.update({"trl": "1.15.0", "peft": "0.20.0", "accelerate": "1.10.0", "transformers": "5.19.0"})
    with pytest.warns(UntestedVersionWarning) as caught:
        require("trl", "trl", "MADPO")
        importlib.reload(importlib.import_module("hf_margin.tuners.petal"))
        importlib.reload(importlib.import_module("hf_margin.trainers._preference"))
    named = sorted(str(w.message).split(" ", 1)[0] for w in caught)
    assert named == ["accelerate", "peft", "transformers", "trl"]
