"""`hf-margin train`: recipe discovery, the command it builds, overrides, errors, one real run; accelerate configs."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

import hf_margin.cli as cli
from hf_margin.demo import parse_recipe_arguments
from hf_margin.recipes_cli import known_recipes, recipe_setup, recipes_root

ROOT = Path(__file__).resolve().parent.parent
ACCELERATE_CONFIGS = sorted((ROOT / "recipes" / "accelerate").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _repository_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_MARGIN_RECIPES", raising=False)


def _dry_run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert cli.main(["train", *argv, "--dry-run"] if "--" not in argv else ["train", "--dry-run", *argv]) == 0
    return shlex.split(capsys.readouterr().out)


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


def _parsed(words: list[str]) -> tuple[Any, Any]:
    """The setup and paths with which the script of a printed ``python script config [overrides]`` runs."""
    setup_type, default_out_dir = recipe_setup(Path(words[1]))
    return parse_recipe_arguments(setup_type, default_out_dir, words[2:])


def test_overrides_are_passed_on_after_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    overrides = ["--steps", "2", "--methods", "MNRL", "--out_dir", "7", "--chatterbot", "false"]
    words = _dry_run(["embedding", "--", *overrides], capsys)
    assert words[2:] == [str(ROOT / "recipes/embedding/config.yaml"), *overrides]
    setup, paths = _parsed(words)
    original = yaml.safe_load((ROOT / "recipes/embedding/config.yaml").read_text())
    assert setup.steps == 2 and setup.methods == ("MNRL",) and paths.out_dir == "7" and setup.chatterbot is False
    assert setup.batch_size == original["batch_size"]
    # options may also follow RECIPE, and overrides without `--` are passed on too
    assert cli.main(["train", "imbalance", "--config", "config_text.yaml", "--dry-run", "--steps", "5"]) == 0
    out = shlex.split(capsys.readouterr().out)
    assert out[-2:] == ["--steps", "5"] and _parsed(out)[0].steps == 5
    # `null` unsets a string field (the faces folder: the recipe then runs on the digits); text stays as typed
    setup, paths = _parsed(_dry_run(["few_shot", "--", "--data_dir", "null", "--out_dir", "010"], capsys))
    assert paths.data_dir is None and paths.out_dir == "010"
    words = _dry_run(
        ["imbalance", "--config", "config_text.yaml", "--", "--methods", "CE", "yes", "--noise", "0.1"], capsys
    )
    setup, _ = _parsed(words)
    assert setup.methods == ("CE", "yes") and setup.noise == (0.1,)


def test_override_read_as_the_field_type(capsys: pytest.CaptureFixture[str]) -> None:
    # YAML 1.1 reads 1e-3 as a string: the recipe must get the float
    setup, _ = _parsed(_dry_run(["margin_heads", "--", "--learning_rate", "1e-3"], capsys))
    assert setup.learning_rate == 1e-3 and isinstance(setup.learning_rate, float)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--learning_rate", "fast"], "learning_rate must be a finite float, got 'fast'"),
        (["--epochs"], "--epochs needs a value (int)"),
        (["--not_a_field", "3"], "unknown field(s) of VerificationSetup: --not_a_field;"),
        (["--max_steps", "5"], "--max_steps (did you mean --steps?)"),
        (["--heads", "ArcFace", "--heads", "CosFace"], "--heads given twice"),
    ],
)
def test_bad_overrides_fail_in_dry_run(overrides: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = "imbalance" if overrides == ["--max_steps", "5"] else "margin_heads"
    config = ["--config", "config_text.yaml"] if recipe == "imbalance" else []
    assert cli.main(["train", "--dry-run", recipe, *config, "--", *overrides]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_bad_config_value_fails_in_dry_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text("epochs: ten\n")
    assert cli.main(["train", "--dry-run", "margin_heads", "--config", str(config)]) == 1
    assert "mine.yaml: epochs must be an int, got 'ten'" in capsys.readouterr().err


def test_no_temporary_files(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _dry_run(["margin_heads", "--", "--epochs", "1", "--heads", "ArcFace"], capsys)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_folder_fails_before_any_work(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a_file").write_text("")
    ran: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: ran.append(command))
    for dry_run in ([], ["--dry-run"]):
        argv = ["train", *dry_run, "margin_heads", "--", "--out_dir", str(tmp_path / "a_file" / "out")]
        assert cli.main(argv) == 1
        assert "a_file is not a folder" in capsys.readouterr().err
    assert ran == []


def test_recipe_setup_found_from_the_script() -> None:
    from hf_margin.demo.margin_heads import VerificationSetup

    assert recipe_setup(ROOT / "recipes/margin_heads/verify_faces.py") == (
        VerificationSetup,
        "hf_margin_out/margin_heads",
    )


def test_unknown_recipe_is_one_line_listing_the_known(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "no_such_recipe", "--dry-run"]) == 1
    known = known_recipes(recipes_root())
    assert {"margin_heads", "madpo", "imbalance"} <= set(known)
    assert capsys.readouterr().err.strip() == (
        f"hf-margin: error: unknown recipe no_such_recipe; known: {', '.join(known)}"
    )


def test_missing_config_accelerate_config_and_recipes_folder(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cli.main(["train", "imbalance", "--dry-run"]) == 1
    assert "has no config.yaml; pass --config, one of: config_images.yaml, config_text.yaml" in capsys.readouterr().err
    assert cli.main(["train", "petal", "--accelerate-config", "tpu", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "tpu is neither a file nor one of: cpu, cpu_ddp, cpu_fsdp, deepspeed_zero2, deepspeed_zero3, fsdp" in err
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
    # cpu_ddp / cpu_fsdp: accelerate starts several processes only through torchrun, which `use_cpu` turns off
    assert config.use_cpu == (path.stem == "cpu")
    assert (config.mixed_precision == "no") == path.stem.startswith("cpu")
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
        "cpu_ddp",
        "cpu_fsdp",
        "deepspeed_zero2",
        "deepspeed_zero3",
        "fsdp",
        "multi_gpu",
        "single_gpu",
    ]


def test_fsdp_config_without_a_gpu_says_it_trains_as_ddp(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """accelerate enables its FSDP plugin for accelerator back-ends only; on CPU processes it trains DDP. The
    command says so instead of letting a user believe the model is sharded."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["train", "transicd", "--accelerate-config", "cpu_fsdp", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "cpu_fsdp.yaml asks for FSDP, but no GPU is visible" in err and "train as DDP" in err
    assert cli.main(["train", "transicd", "--accelerate-config", "cpu_ddp", "--dry-run"]) == 0
    assert "FSDP" not in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cli.main(["train", "transicd", "--accelerate-config", "fsdp", "--dry-run"]) == 0
    assert "FSDP" not in capsys.readouterr().err


@pytest.mark.heavy
def test_real_run_of_the_smallest_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = ["--methods", "CE", "focal", "--noise", "0.2", "--steps", "3", "--out_dir", str(tmp_path)]
    assert cli.main(["train", "imbalance", "--config", "config_images.yaml", "--", *overrides]) == 0
    rows = json.loads((tmp_path / "imbalance_images.json").read_text())
    assert rows


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_output_folder_that_refuses_writes_fails_in_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    # /proc refuses new files even to root, whose permission bits would say yes
    assert cli.main(["train", "--dry-run", "margin_heads", "--", "--out_dir", "/proc/hf_margin_out"]) == 1
    assert "out_dir /proc/hf_margin_out cannot be written: /proc is not writable" in capsys.readouterr().err
