"""Run every benchmark and write one markdown table.

    python -m benchmarks.run [--device cpu|cuda] [--quick] [--out benchmarks/RESULTS.md]

Each benchmark compares hf_margin with its anchor library in the same process, on the same inputs, and
reports ours / anchor for time and peak memory (below 1 means we are faster / lighter).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
from pathlib import Path

import torch

from benchmarks._harness import BenchRow

BENCHMARKS = (
    "benchmarks.bench_margin_heads",
    "benchmarks.bench_petal",
    "benchmarks.bench_madpo",
    "benchmarks.bench_gradient_entanglement",
    "benchmarks.bench_embedding",
    "benchmarks.bench_transicd",
    "benchmarks.bench_margin_mse",
    "benchmarks.bench_classification_losses",
    "benchmarks.bench_metric_learning",
    "benchmarks.bench_distillation",
    "benchmarks.bench_crps",
    "benchmarks.bench_ignite",
    "benchmarks.bench_partial_fc",
)


def markdown(rows: list[BenchRow], device: str) -> str:
    machine = torch.cuda.get_device_name() if device.startswith("cuda") else f"{platform.processor() or 'CPU'}"
    lines = [
        f"Measured {datetime.date.today()} on {machine}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
        f"threads, torch {torch.__version__}; command: `python -m benchmarks.run --device {device}`.",
        "",
        "| benchmark | case | anchor | ours (ms) | anchor (ms) | time ratio | ours peak (MiB) | anchor peak (MiB) "
        "| memory ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.benchmark} | {r.case} | {r.anchor} | {r.ours_ms:.2f} | {r.anchor_ms:.2f} | {r.time_ratio:.2f} "
        f"| {r.ours_mb:.1f} | {r.anchor_mb:.1f} | {r.memory_ratio:.2f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", nargs="+", help="module names, e.g. bench_margin_heads")
    parser.add_argument("--out", default="benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1)) if args.device == "cpu" else None
    rows: list[BenchRow] = []
    for module in BENCHMARKS:
        if args.only and module.rpartition(".")[2] not in args.only:
            continue
        rows.extend(importlib.import_module(module).run(args.device, args.quick))
    table = markdown(rows, args.device)
    Path(args.out).write_text(table)
    print(table)


if __name__ == "__main__":
    main()
