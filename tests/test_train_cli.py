"""`hf-margin train`: recipe discovery, the command it builds, overrides, errors, one real run; accelerate configs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

import hf_margin.cli as cli
from hf_margin.recipes_cli import recipes_root

ROOT = Path(__file__).resolve().parent.parent
ACCELERATE_CONFIGS = sorted((ROOT / "recipes" / "accelerate").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _repository_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_MARGIN_RECIPES", raising=False)


def _dry_run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert cli.main(["train", *argv, "--dry-run"] if "--" not in argv else ["train", "--dry-run", *argv]) == 0
    return capsys.readouterr().out.strip().split(" ")


def test_command_without_accelerate(capsys: pytest.CaptureFixture[str]) -> None:
    words = _dry_run(["margin_heads"], capsys)
    assert words == [
        sys.executable,
        str(ROOT / "recipes/margin_heads/verify_faces.py"),
        str(ROOT / "recipes/margin_heads/config.yaml"),
    ]


def test_command_with_named_and_path_accelerate_config(capsys: pytest.CaptureFixture[str]) -> None:
    words = _dry_run(["transicd", "--accelerate-config", "multi_gpu"], capsys)
    assert words[1:4] == ["launch", "--config_file", str(ROOT / "recipes/accelerate/multi_gpu.yaml")]
    assert Path(words[0]).name == "accelerate" or words[1:3] == ["-m", "accelerate.commands.launch"]
    assert words[4:] == [str(ROOT / "recipes/transicd/train_icd_coding.py"), str(ROOT / "recipes/transicd/config.yaml")]
    path = str(ROOT / "recipes/accelerate/fsdp.yaml")
    assert path in _dry_run(["madpo", "--accelerate-config", path], capsys)


def test_config_choice_and_script_named_in_config_comment(capsys: pytest.CaptureFixture[str]) -> None:
    assert _dry_run(["transicd", "--config", "config_reuters.yaml"], capsys)[-1].endswith("config_reuters.yaml")
    # recipes/gradient_entanglement/ has only a config; its comment names the MADPO script.
    words = _dry_run(["gradient_entanglement"], capsys)
    assert words[1:] == [
        str(ROOT / "recipes/madpo/compare_preference_methods.py"),
        str(ROOT / "recipes/gradient_entanglement/config.yaml"),
    ]


def test_overrides_are_written_over_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    overrides = ["--steps", "2", "--methods", "MNRL", "--out_dir", "7", "--chatterbot", "false"]
    words = _dry_run(["embedding", "--", *overrides], capsys)
    merged = yaml.safe_load(Path(words[-1]).read_text())
    original = yaml.safe_load((ROOT / "recipes/embedding/config.yaml").read_text())
    assert merged["steps"] == 2 and merged["methods"] == ["MNRL"] and merged["out_dir"] == "7"
    assert merged["chatterbot"] is False
    assert {k: v for k, v in merged.items() if k not in ("steps", "methods", "out_dir", "chatterbot")} == {
        k: v for k, v in original.items() if k not in ("steps", "methods", "out_dir", "chatterbot")
    }
    # options may also follow RECIPE, and overrides without `--` are passed on too
    assert cli.main(["train", "imbalance", "--config", "config_text.yaml", "--dry-run", "--steps", "5"]) == 0
    out = capsys.readouterr().out.strip().split(" ")
    assert yaml.safe_load(Path(out[-1]).read_text())["steps"] == 5
    # `null` unsets a string field (the faces folder: the recipe then runs on the digits); text stays as typed
    words = _dry_run(["few_shot", "--", "--data_dir", "null", "--out_dir", "010"], capsys)
    merged = yaml.safe_load(Path(words[-1]).read_text())
    assert merged["data_dir"] is None and merged["out_dir"] == "010"
    words = _dry_run(
        ["imbalance", "--config", "config_text.yaml", "--", "--methods", "CE", "yes", "--noise", "0.1"], capsys
    )
    merged = yaml.safe_load(Path(words[-1]).read_text())
    assert merged["methods"] == ["CE", "yes"] and merged["noise"] == [0.1]


def test_unknown_recipe_is_one_line_listing_the_known(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "no_such_recipe", "--dry-run"]) == 1
    assert capsys.readouterr().err.strip() == (
        "hf-margin: error: unknown recipe no_such_recipe; known: aggregate, condensation, contrastive, distillation, "
        "drm, embedding, few_shot, generalization, gradient_entanglement, imbalance, landmark_distillation, madpo, "
        "margin_heads, margin_mse, metric_learning, offline_optimization, petal, probabilistic, probes, robustness, "
        "self_training, transicd"
    )


def test_missing_config_accelerate_config_and_recipes_folder(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cli.main(["train", "imbalance", "--dry-run"]) == 1
    assert "has no config.yaml; pass --config, one of: config_images.yaml, config_text.yaml" in capsys.readouterr().err
    assert cli.main(["train", "petal", "--accelerate-config", "tpu", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "tpu is neither a file nor one of: cpu, deepspeed_zero2, deepspeed_zero3, fsdp, multi_gpu" in err
    monkeypatch.setenv("HF_MARGIN_RECIPES", str(tmp_path / "absent"))
    assert cli.main(["train", "petal", "--dry-run"]) == 1
    assert "recipes folder not found" in capsys.readouterr().err
    monkeypatch.setenv("HF_MARGIN_RECIPES", str(tmp_path))
    assert recipes_root() == tmp_path


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda p: p.stem)
def test_accelerate_config_loads_with_accelerate(path: Path) -> None:
    config = load_config_from_file(str(path))
    assert isinstance(config, ClusterConfig)
    assert config.num_processes == (1 if path.stem in ("cpu", "single_gpu") else 2)
    assert config.use_cpu == (path.stem == "cpu")
    # accelerate checks only the top-level keys; check the nested ones against what `accelerate config` writes
    nested = yaml.safe_load(path.read_text())
    assert set(nested.get("fsdp_config", {})) <= {
        "fsdp_activation_checkpointing",
        "fsdp_auto_wrap_policy",
        "fsdp_cpu_ram_efficient_loading",
        "fsdp_offload_params",
        "fsdp_reshard_after_forward",
        "fsdp_state_dict_type",
        "fsdp_version",
    }
    assert set(nested.get("deepspeed_config", {})) <= {
        "gradient_accumulation_steps",
        "gradient_clipping",
        "offload_optimizer_device",
        "offload_param_device",
        "zero3_init_flag",
        "zero3_save_16bit_model",
        "zero_stage",
    }
    if "deepspeed" in path.stem:
        assert config.deepspeed_config["zero_stage"] == int(path.stem[-1])


def test_every_accelerate_config_present() -> None:
    assert [p.stem for p in ACCELERATE_CONFIGS] == [
        "cpu",
        "deepspeed_zero2",
        "deepspeed_zero3",
        "fsdp",
        "multi_gpu",
        "single_gpu",
    ]


@pytest.mark.heavy
def test_real_run_of_the_smallest_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = ["--methods", "CE", "focal", "--noise", "0.2", "--steps", "3", "--out_dir", str(tmp_path)]
    assert cli.main(["train", "imbalance", "--config", "config_images.yaml", "--", *overrides]) == 0
    rows = json.loads((tmp_path / "imbalance_images.json").read_text())
    assert rows
