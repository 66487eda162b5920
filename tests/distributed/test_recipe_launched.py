"""`hf-margin train <recipe> --accelerate-config cpu_fsdp`: the margin-heads recipe (its own training loop) and the
MADPO recipe (Trainer-based, with precomputed reference log-probs) run end to end on 2 launched CPU processes; the
command says that accelerate trains an FSDP config as DDP without a GPU; the main process alone writes and prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hf_margin import cli
from hf_margin.demo import DemoContext
from hf_margin.demo.margin_heads import VerificationSetup, run

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason="with a GPU the config runs FSDP on it: scripts/gpu_check.sh"
)


def _launch(recipe: str, overrides: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[str, str]:
    assert cli.main(["train", recipe, "--accelerate-config", "cpu_fsdp", "--", *overrides]) == 0
    out, err = capfd.readouterr()
    assert "accelerate launch --config_file" in out and "cpu_fsdp.yaml" in out
    assert "train as DDP" in err
    assert out.count("results in ") == 1  # one table, from the main process
    return out, err


@pytest.mark.heavy
def test_margin_heads_recipe_splits_its_runs_across_processes_and_equals_one_process(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The 2 (fold, seed) runs go one to each process; the gathered results equal one process doing both (on
    sklearn's digits, ``--data_dir null``: the test needs no data folder)."""
    setup = VerificationSetup(epochs=1, heads=["ArcFace"], folds=2, seeds=1, max_images_per_identity=4)
    overrides = ["--epochs", "1", "--heads", "ArcFace", "--folds", "2", "--seeds", "1"]
    overrides += ["--max_images_per_identity", "4"]
    _launch("margin_heads", [*overrides, "--data_dir", "null", "--out_dir", str(tmp_path / "two")], capfd)
    launched = json.loads((tmp_path / "two" / "margin_heads.json").read_text())
    assert launched["setup"]["folds"] == 2 and (tmp_path / "two" / "margin_heads_roc.png").is_file()

    (tmp_path / "one").mkdir()
    run(DemoContext(out_dir=tmp_path / "one", data_dir=None), setup)
    single = json.loads((tmp_path / "one" / "margin_heads.json").read_text())
    assert launched["dataset"] == single["dataset"]
    for name in ("softmax CE", "ArcFace"):
        for metric in ("tar_at_far", "tar_at_far_std", "accuracy", "accuracy_std"):
            assert launched["heads"][name][metric] == pytest.approx(single["heads"][name][metric], abs=1e-6)
    assert launched["frozen_backbone"]["tar_at_far"] == pytest.approx(single["frozen_backbone"]["tar_at_far"])


@pytest.mark.heavy
def test_madpo_recipe_with_precomputed_reference_runs_launched(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The recipe sets precompute_ref_log_probs=True (TRL's cache would sit in per-process temporary folders for
    an in-memory dataset; MADPOTrainer shares it through the output folder)."""
    overrides = ["--methods", "MADPO", "--corruptions", "0.0", "--steps", "2", "--eval_prompts", "2"]
    overrides += ["--max_new_tokens", "4", "--classifier_texts", "200", "--out_dir", str(tmp_path)]
    out, err = _launch("madpo", overrides, capfd)
    assert (out + err).count("'train_runtime'") == 1  # one training, shared by the two processes
    report = json.loads((tmp_path / "madpo.json").read_text())
    assert 0 <= report["runs"]["0.0"]["MADPO"]["judge"] <= 1
    assert list((tmp_path / "madpo_runs").rglob("reference_logps/train/state.json"))
