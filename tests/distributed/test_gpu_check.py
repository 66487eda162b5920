"""scripts/gpu_check.sh runs here: without a CUDA GPU it reports every check as skipped and exits 0."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.sh"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: run scripts/gpu_check.sh itself")
def test_gpu_check_skips_cleanly_without_a_gpu(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={"PATH": "/usr/bin:/bin", "OUT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "SKIP" in line]
    assert len(rows) == 3 and all("FAIL" not in line for line in result.stdout.splitlines())
    assert "GPU check (0 CUDA device(s))" in result.stdout
