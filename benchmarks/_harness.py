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


def embedding_head_steps(
    ours: torch.nn.Module, anchor: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[Step, Step]:
    """One forward + backward of each head ``module(x, y)`` on the same embeddings and labels."""

    def step(module: torch.nn.Module) -> Step:
        def run() -> None:
            module.zero_grad(set_to_none=True)
            x.grad = None
            module(x, y).backward()

        return run

    return step(ours), step(anchor)


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
    """Peak memory of the first call of `step` above what was allocated before it (MiB).

    On CPU this is the growth of the process's peak resident set (Linux VmHWM), so it is the first call that is
    measured: later calls reuse memory the allocator kept. It is noisy by a few MiB; small cases say little.
    """
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


def measure_case(
    module: str, case: str, make_steps: Callable[[str, str], tuple[Step, Step]], repeats: int, device: str
) -> tuple[float, float, float, float]:
    """(ours ms, anchor ms, ours MiB, anchor MiB) of one case: times here, memory in fresh processes."""
    ours, anchor = make_steps(case, device)
    ours_ms, anchor_ms = time_pair(ours, anchor, repeats, device)
    del ours, anchor
    ours_mb, anchor_mb = (measure_memory_in_subprocess(module, case, which, device) for which in ("ours", "anchor"))
    return ours_ms, anchor_ms, ours_mb, anchor_mb


def memory_main(make_steps: Callable[[str, str], tuple[Step, Step]]) -> None:
    """The fresh process of `measure_memory_in_subprocess`: ``python -m <bench> --memory CASE WHICH DEVICE``."""
    _, _, case, which, device = sys.argv
    torch.set_num_threads(2)
    steps = dict(zip(("ours", "anchor"), make_steps(case, device), strict=True))
    print(json.dumps({"mb": peak_extra_mb(steps[which], device)}))
