"""The layer rules of DESIGN.md ("The shape"), kept by import-linter's contracts in pyproject.toml, and the
deprecation shims of the import paths that moved when the layers were cleaned."""

from __future__ import annotations

import ast
import importlib
import logging
import warnings
from pathlib import Path

import pytest
from importlinter.api import read_configuration
from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
PACKAGE = ROOT / "hf_margin"


def test_the_layer_contracts_are_configured() -> None:
    ids = {contract["id"] for contract in read_configuration(str(PYPROJECT))["contracts_options"]}
    assert {"layers", "acyclic", "private-modules", "optional-dependencies"} <= ids


def test_the_import_linter_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    loggers = [logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    enabled = [logger for logger in loggers if not logger.disabled]
    try:
        status = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    finally:  # its logging set-up disables every existing logger, which would hide later tests' warnings
        for logger in enabled:
            logger.disabled = False
    assert status == EXIT_STATUS_SUCCESS, capsys.readouterr().out


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _owner(module: str) -> str:
    """The package whose private names `module` holds: itself if it is a package, else its parent."""
    path = ROOT.joinpath(*module.split("."))
    return module if path.is_dir() else module.rpartition(".")[0]


def test_no_private_name_is_imported_across_packages() -> None:
    # import-linter sees modules, not names: `from hf_margin.x.y import _helper` outside hf_margin.x is checked here.
    crossings = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("hf_margin"):
                continue
            owner = _owner(str(node.module))
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            if private and not (importer + ".").startswith(owner + "."):
                crossings.append(f"{importer} imports {', '.join(private)} from {node.module}")
    assert not crossings, "private names used outside their package:\n" + "\n".join(crossings)


MOVED = [
    ("hf_margin.data.co2", "hf_margin.demo.data.co2", "co2_windows"),
    ("hf_margin.data.faces", "hf_margin.demo.data.faces", "IdentityImages"),
    ("hf_margin.data.icd_notes", "hf_margin.demo.data.icd_notes", "icd_pseudo_notes"),
    ("hf_margin.data.pretrained", "hf_margin.demo.data.pretrained", "efficientnet_lite0"),
    ("hf_margin.data.retrieval", "hf_margin.demo.data.retrieval", "RetrievalSet"),
    ("hf_margin.data.reuters", "hf_margin.demo.data.reuters", "load_reuters_grain_corn"),
    ("hf_margin.data.rotten_tomatoes", "hf_margin.demo.data.rotten_tomatoes", "load_snippets"),
    ("hf_margin.data.condensation", "hf_margin.trainers.condensation", "condense"),
    ("hf_margin.data.equity", "hf_margin.losses.equity", "add_equity_weights"),
    ("hf_margin.data.quality", "hf_margin.tuners.petal.quality", "sharpness_score"),
]


@pytest.mark.parametrize(("old", "new", "name"), MOVED)
def test_an_old_path_still_imports_and_warns_with_the_new_path(old: str, new: str, name: str) -> None:
    if new.startswith("hf_margin.tuners"):
        pytest.importorskip("peft")
    with pytest.warns(DeprecationWarning, match=rf"`{old}` moved to `{new}`") as caught:
        namespace: dict[str, object] = {}
        exec(f"from {old} import {name}", namespace)
    assert namespace[name] is getattr(importlib.import_module(new), name)
    assert caught[0].filename == "<string>"  # the warning points at the importing line


def test_an_old_path_does_not_invent_names() -> None:
    old = importlib.import_module("hf_margin.data.faces")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="no_such_name"):
            old.no_such_name  # noqa: B018
