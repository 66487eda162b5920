"""Run every benchmark and write one markdown table.

    python -m benchmarks.run [--device cpu|cuda] [--quick] [--only bench_x ...] [--out benchmarks/RESULTS.md]

Each benchmark compares hf_margin with its anchor library in the same process, on the same inputs, and
reports ours / anchor for time and peak memory (below 1 means we are faster / lighter). Every row says when and how
it was measured; with ``--only`` the other benchmarks' rows already in the output file are kept.
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


HEADER = (
    "Command: `python -m benchmarks.run --device <cpu|cuda> [--only <module> ...]` (the whole set or some modules; "
    "a run with `--only` keeps the other rows). The last column says when, where and how each row was measured.\n\n"
    "| benchmark | case | anchor | ours (ms) | anchor (ms) | time ratio | ours peak (MiB) | anchor peak (MiB) "
    "| memory ratio | measured |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
)


def markdown_rows(rows: list[BenchRow], device: str, quick: bool) -> list[str]:
    """One table line per row, stamped with today's date, the device, the torch threads and ``--quick``."""
    machine = torch.cuda.get_device_name() if device.startswith("cuda") else f"{platform.processor() or 'CPU'}"
    stamp = f"{datetime.date.today()}, {machine}, {torch.get_num_threads()} threads" + (", --quick" if quick else "")
    return [
        f"| {r.benchmark} | {r.case} | {r.anchor} | {r.ours_ms:.2f} | {r.anchor_ms:.2f} | {r.time_ratio:.2f} "
        f"| {r.ours_mb:.1f} | {r.anchor_mb:.1f} | {r.memory_ratio:.2f} | {stamp} |"
        for r in rows
    ]


def kept_rows(existing: str, rerun: set[str]) -> list[str]:
    """The table lines of `existing` (a RESULTS.md) whose benchmark (first cell) is not in `rerun`."""
    lines = [line for line in existing.splitlines() if line.startswith("| ") and not line.startswith("| benchmark |")]
    return [line for line in lines if line.split(" | ")[0].removeprefix("| ") not in rerun]


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
    out = Path(args.out)
    kept = kept_rows(out.read_text(), {r.benchmark for r in rows}) if args.only and out.is_file() else []
    table = HEADER + "\n".join([*kept, *markdown_rows(rows, args.device, args.quick)]) + "\n"
    out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
