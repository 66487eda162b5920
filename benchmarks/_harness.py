"""Shared measuring code: time per call (median of interleaved repeats) and peak memory of one call, measured
in a fresh process so that earlier allocations do not hide it. Ratios are ours / anchor: below 1 is better."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

Step = Callable[[], None]


@dataclass(frozen=True)
class BenchRow:
    benchmark: str
    case: str
    anchor: str
    ours_ms: float
    anchor_ms: float
    ours_mb: float
    anchor_mb: float

    @property
    def time_ratio(self) -> float:
        return self.ours_ms / self.anchor_ms

    @property
    def memory_ratio(self) -> float:
        return self.ours_mb / self.anchor_mb if self.anchor_mb > 0 else float("nan")


def time_pair(ours: Step, anchor: Step, repeats: int, device: str) -> tuple[float, float]:
    """Median milliseconds per call of each step, alternating them so machine noise hits both alike."""
    for step in (ours, anchor):  # warm-up
        step()
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeats):
        for index, step in enumerate((ours, anchor)):
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            times[index].append(1000 * (time.perf_counter() - start))
    return statistics.median(times[0]), statistics.median(times[1])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to the current RSS


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_extra_mb(step: Step, device: str) -> float:
    """Peak memory of one call of `step` above what was allocated before it (MiB)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    before = _rss_kib("VmRSS:")
    _reset_peak_rss()
    step()
    return (_rss_kib("VmHWM:") - before) / 1024


def measure_memory_in_subprocess(module: str, case: str, which: str, device: str) -> float:
    """Run ``python -m <module> --memory <case> <which> <device>`` and read the MiB it prints."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--memory", case, which, device],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1])["mb"])
