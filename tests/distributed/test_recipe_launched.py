"""`hf-margin train <recipe> --accelerate-config cpu_fsdp`: a Trainer-based recipe runs end to end on 2 launched
CPU processes, and the command says that accelerate trains an FSDP config as DDP without a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hf_margin import cli


@pytest.mark.heavy
@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the config runs FSDP on it: scripts/gpu_check.sh")
def test_imbalance_recipe_runs_launched_with_the_cpu_fsdp_config(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    overrides = ["--methods", "CE", "--noise", "0.2", "--steps", "3", "--out_dir", str(tmp_path)]
    argv = ["train", "imbalance", "--config", "config_images.yaml", "--accelerate-config", "cpu_fsdp", "--"]
    assert cli.main([*argv, *overrides]) == 0
    out, err = capfd.readouterr()
    assert "accelerate launch --config_file" in out and "cpu_fsdp.yaml" in out
    assert "train as DDP" in err
    assert err.count("'train_runtime'") + out.count("'train_runtime'") >= 2  # a Trainer ran (2 noise levels)
    assert json.loads((tmp_path / "imbalance_images.json").read_text())
