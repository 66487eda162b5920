"""Start tests/distributed/worker.py with ``accelerate launch`` on 2 CPU processes (gloo) and read back what each
rank wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.multiprocess import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "distributed" / "worker.py"
CONFIGS = ROOT / "recipes" / "accelerate"


def accelerate_launch(config: str, *arguments: str, timeout: float = 600) -> None:
    """``accelerate launch --config_file recipes/accelerate/<config>.yaml --num_processes 2 <arguments>`` with one
    thread per process, offline; fails with the tail of its output when it exits non-zero or runs past `timeout`."""
    command = [
        str(Path(sys.executable).with_name("accelerate")),
        "launch",
        "--config_file",
        str(CONFIGS / f"{config}.yaml"),
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        *arguments,
    ]
    env = os.environ | {
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "Error" in line]
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}; its errors:\n" + "\n".join(errors[:20]))


def launch_runs(out: Path, runs: list[tuple[str, str]], timeout: float = 600) -> Path:
    """Train each ``(mode, case)`` of `runs` (mode ``ddp`` or ``fsdp2``) in one 2-process launch with the
    ``cpu_ddp`` config (one start-up for all); the output folder."""
    accelerate_launch("cpu_ddp", str(WORKER), str(out), *(f"{mode}:{case}" for mode, case in runs), timeout=timeout)
    return out


def rank_weights(folder: Path, world: int = 2) -> list[dict[str, torch.Tensor]]:
    """The full trained parameters each rank wrote in `folder`."""
    return [load_file(folder / f"weights_rank{rank}.safetensors") for rank in range(world)]
