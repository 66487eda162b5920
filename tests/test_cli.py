"""The hf-margin command line and the package's import footprint."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hf_margin import __version__
from hf_margin.catalogue import CATALOGUE, markdown_table
from hf_margin.cli import main


def test_list_prints_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for method in CATALOGUE:
        assert method.entry_point in out
    assert f"of {len(CATALOGUE)} methods implemented" in out


def test_list_formats(capsys: pytest.CaptureFixture[str]) -> None:
    main(["list", "--format", "markdown"])
    assert capsys.readouterr().out.strip() == markdown_table()
    main(["list", "--format", "json"])
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == [m.name for m in CATALOGUE]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hf-margin {__version__}"


def test_demo_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--list"]) == 0
    assert "margin_heads" in capsys.readouterr().out


def test_errors_are_one_line_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--only", "no_such_entry"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "hf-margin: error: unknown demo entry no_such_entry; known: margin_heads, petal, madpo"


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hf_margin.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"hf-margin {__version__}"


def test_import_needs_only_torch_and_transformers() -> None:
    code = (
        "import sys\n"
        "for name in ('peft', 'trl', 'sentence_transformers', 'sklearn', 'matplotlib', 'datasets'):\n"
        "    sys.modules[name] = None\n"
        "import hf_margin, torch\n"
        "head = hf_margin.ArcFaceHead(4, 3)\n"
        "print(float(head(torch.randn(2, 4), torch.tensor([0, 2]))) > 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
