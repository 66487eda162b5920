"""The hf-margin command line and the package's import footprint."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hf_margin import __version__, cli
from hf_margin.catalogue import CATALOGUE, markdown_table
from hf_margin.cli import main


@pytest.mark.parametrize("columns", [80, 120, 60])
def test_list_fits_the_terminal_and_names_only_real_entry_points(
    columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= columns
    words = " ".join(out.split())
    for method in CATALOGUE:
        if method.status == "implemented":
            assert method.entry_point in out
        else:
            assert method.entry_point not in out, f"{method.name} is {method.status}: its entry point does not exist"
            assert " ".join(method.reason.split()) in words, f"{method.name}'s reason is missing"
    implemented = sum(m.status == "implemented" for m in CATALOGUE)
    assert f"{implemented} of {len(CATALOGUE)} methods implemented" in words


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
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("margin_heads") and " default " in line for line in lines)
    assert any(line.startswith("robustness") and " --all " in line for line in lines)


def test_default_run_is_the_core_and_all_adds_the_catalogue() -> None:
    from hf_margin.demo import DEMOS, select

    core = [entry.name for entry in select(None)]
    assert core == ["margin_heads", "petal", "madpo", "embedding", "transicd", "margin_mse"]
    assert [entry.name for entry in select(None, everything=True)] == list(DEMOS)
    assert [entry.name for entry in select(["robustness"])] == ["robustness"]


def test_errors_are_one_line_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--only", "no_such_entry"]) == 1
    err = capsys.readouterr().err
    from hf_margin.demo import DEMOS

    assert err.strip() == f"hf-margin: error: unknown demo entry no_such_entry; known: {', '.join(DEMOS)}"
    assert list(DEMOS)[:6] == ["margin_heads", "petal", "madpo", "embedding", "transicd", "margin_mse"]


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hf_margin.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"hf-margin {__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["demo", "--list"], ["train", "--help"]])
def test_quick_commands_import_no_heavy_module(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from hf_margin.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('torch', 'transformers', 'peft', 'trl', 'sentence_transformers', 'datasets', 'numpy', 'matplotlib')\n"
        "print('loaded:', *sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "loaded:"


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


def test_score_preferences_command(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    datasets = pytest.importorskip("datasets")
    from transformers import BertConfig, BertForSequenceClassification

    from tests.trainers.tiny_lm import preference_rows, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForSequenceClassification(config).save_pretrained(tmp_path / "reward")
    tokenizer.save_pretrained(tmp_path / "reward")
    rows = preference_rows()
    rows.pop("margin")
    datasets.Dataset.from_dict(rows).to_json(tmp_path / "pairs.jsonl")
    code = main(
        [
            "score-preferences",
            "--dataset",
            str(tmp_path / "pairs.jsonl"),
            "--reward-model",
            str(tmp_path / "reward"),
            "--out",
            str(tmp_path / "scored"),
        ]
    )
    assert code == 0 and "wrote 8 pairs" in capsys.readouterr().out
    scored = datasets.load_from_disk(str(tmp_path / "scored"))
    assert len(scored["margin"]) == 8 and len(set(scored["margin"])) > 1
    assert main(["score-preferences", "--dataset", str(tmp_path / "x.txt"), "--reward-model", "r", "--out", "o"]) == 1


@pytest.mark.parametrize(
    ("module", "install"),
    [("statsmodels", "pip install 'hf-margin[data]'"), ("sentence_transformers", "pip install 'hf-margin[st]'")],
)
def test_a_missing_module_names_the_extra_that_installs_it(
    module: str, install: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def needs_it(args: object) -> None:
        raise ModuleNotFoundError(f"No module named '{module}'", name=f"{module}.api")

    monkeypatch.setattr(cli, "_list", needs_it)
    assert main(["list"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"hf-margin: error: this command needs `{module}`, which is not installed: {install}"
    )
