"""hf_margin as a user gets it: installed from its wheel (not editable), used from a folder outside the repository.

Run by scripts/test_wheel.sh inside the clean environment it builds; ``$HF_MARGIN_REPO`` names the repository the
wheel was built from (read for the lists of files the wheel must carry and for the README's snippets, never imported).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import sysconfig
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import pytest

REPO = Path(os.environ["HF_MARGIN_REPO"])
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
os.environ.update(OFFLINE)


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "hf-margin"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=os.environ | OFFLINE)


def test_hf_margin_is_the_installed_wheel_not_the_checkout() -> None:
    import hf_margin

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(hf_margin.__file__).resolve().is_relative_to(site), hf_margin.__file__
    assert not Path(hf_margin.__file__).resolve().is_relative_to(REPO.resolve())
    assert metadata.version("hf-margin") == hf_margin.__version__
    assert not any("__editable__" in str(path) for path in sys.path)


def repo_files(folder: str, patterns: tuple[str, ...]) -> set[str]:
    """The files of `folder` that git tracks (or would track) and that match one of `patterns`."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", folder],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    paths = [Path(path).relative_to(folder) for path in listed if (REPO / path).is_file()]
    return {str(path) for path in paths if any(path.match(pattern) for pattern in patterns)}


def installed_files(package: str) -> set[str]:
    root = Path(str(resources.files(package)))
    return {
        str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.mark.parametrize(
    ("folder", "package", "patterns"),
    [
        ("hf_margin", "hf_margin", ("*.py", "py.typed")),
        ("model_cards", "hf_margin.model_card_templates", ("*.py", "*.md")),
        ("recipes", "hf_margin.recipes", ("*.py", "*.yaml", "*.md")),
    ],
)
def test_the_wheel_carries_every_runtime_file(folder: str, package: str, patterns: tuple[str, ...]) -> None:
    expected = repo_files(folder, patterns)
    missing = sorted(expected - installed_files(package))
    assert not missing, f"files of {folder}/ missing from the wheel: {missing}"


def test_the_wheel_carries_its_licence() -> None:
    files = [str(file) for file in metadata.distribution("hf-margin").files or []]
    licence = [file for file in files if re.search(r"\.dist-info/(licenses/)?LICENSE$", file)]
    assert licence, f"no LICENSE in the wheel's metadata: {files[-8:]}"
    assert "Apache License" in Path(str(metadata.distribution("hf-margin").locate_file(licence[0]))).read_text()
    assert metadata.metadata("hf-margin")["License-Expression"] == "Apache-2.0"


# ---------------------------------------------------------------- the README's snippets, as a user pastes them


def readme_snippets() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Use it in your stack\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_has_four_snippets() -> None:
    assert len(readme_snippets()) == 4


@pytest.mark.parametrize("index", range(4), ids=("peft", "trl", "sentence-transformers", "trainer"))
def test_readme_snippet_runs(index: int, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(readme_snippets()[index])
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=os.environ
    )
    assert result.returncode == 0, result.stderr[-3000:]


# ---------------------------------------------------------------- every model kind saves with its card and reloads


def tiny_bert(**kwargs: Any) -> Any:
    from transformers import BertConfig

    sizes = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
    return BertConfig(
        intermediate_size=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **sizes, **kwargs
    )


def card_of(folder: Path) -> Any:
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "README.md")
    assert "{{" not in card.content and "hf_margin" in card.text
    return card


def test_margin_head_model_round_trip_with_its_card(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModel

    from hf_margin import MarginHeadConfig, MarginHeadModel

    config = MarginHeadConfig(backbone_config=tiny_bert().to_dict(), head_type="arcface", embedding_size=8)
    config.num_labels = 4
    model = MarginHeadModel(config).eval()
    model.save_pretrained(tmp_path / "faces")
    assert {"hf_margin", "arcface"} <= set(card_of(tmp_path / "faces").data.tags)
    ids = torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(0))
    reloaded = AutoModel.from_pretrained(tmp_path / "faces").eval()
    assert type(reloaded) is MarginHeadModel
    torch.testing.assert_close(reloaded(input_ids=ids).embeddings, model(input_ids=ids).embeddings)


def test_transicd_round_trip_with_its_card(tmp_path: Path) -> None:
    import torch

    from hf_margin import TransICDConfig, TransICDModel

    config = TransICDConfig(backbone_config=tiny_bert().to_dict(), id2label={0: "A00", 1: "J45"}, label_counts=[9, 2])
    model = TransICDModel(config).eval()
    model.save_pretrained(tmp_path / "coder")
    assert "transicd" in card_of(tmp_path / "coder").data.tags
    ids = torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(0))
    reloaded = TransICDModel.from_pretrained(tmp_path / "coder").eval()
    torch.testing.assert_close(reloaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_petal_adapter_round_trip_with_its_card(tmp_path: Path) -> None:
    import torch
    from datasets import Dataset
    from peft import PeftModel, get_peft_model
    from transformers import BertForSequenceClassification, TrainingArguments

    from hf_margin import PetalConfig
    from hf_margin.trainers import PetalTrainer

    def classifier() -> Any:
        torch.manual_seed(0)
        return BertForSequenceClassification(tiny_bert(num_labels=2))

    model = get_peft_model(classifier(), PetalConfig(r=4, target_modules=["query", "value"]))
    rows = Dataset.from_dict(
        {"input_ids": [[1, 5, 7, 2]] * 8, "labels": [0, 1] * 4, "petal_quality": [i / 8 for i in range(8)]}
    )
    args = TrainingArguments(
        str(tmp_path / "petal"), max_steps=1, per_device_train_batch_size=4, report_to=[], use_cpu=True
    )
    trainer = PetalTrainer(model=model, args=args, train_dataset=rows)
    trainer.train()
    trainer.save_model()
    assert "petal" in card_of(tmp_path / "petal").data.tags
    loaded = PeftModel.from_pretrained(classifier(), tmp_path / "petal").eval()
    ids, quality = torch.tensor([[1, 5, 7, 2]] * 2), torch.tensor([0.2, 0.9])
    expected = model.eval()(input_ids=ids, petal_quality=quality).logits
    torch.testing.assert_close(loaded(input_ids=ids, petal_quality=quality).logits, expected)


# ---------------------------------------------------------------- the command line


def test_cli_help_list_and_demo_list_answer() -> None:
    assert run("--help").returncode == 0
    listing = run("list")
    assert listing.returncode == 0 and "methods implemented" in listing.stdout
    demos = run("demo", "--list")
    assert demos.returncode == 0 and "aggregate" in demos.stdout


def test_cli_train_finds_the_shipped_recipes_and_accelerate_configs() -> None:
    result = run("train", "aggregate", "--accelerate-config", "cpu", "--dry-run")
    assert result.returncode == 0, result.stderr
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert str(site / "hf_margin" / "recipes" / "aggregate") in result.stdout
    assert str(site / "hf_margin" / "recipes" / "accelerate" / "cpu.yaml") in result.stdout


def test_cli_demo_runs_one_quick_entry(tmp_path: Path) -> None:
    result = run("demo", "--only", "aggregate", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "results.png").is_file()
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert rows and {row["entry"] for row in rows} == {"aggregate"}
    assert all(math.isfinite(row["ours"]) and math.isfinite(row["baseline_value"]) for row in rows)
    assert rows[0]["method"] in result.stdout
