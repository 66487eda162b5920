"""The evidence runs' records: one JSON line per finished (method, setting, seed) run, appended as each finishes (so
a stopped run keeps its results and a restart skips them), and their summary: per setting and method, the mean of
every metric with its 95% interval over seeds and the paired difference to the method's baseline."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hf_margin._compat import installed_version
from hf_margin.demo import DemoRow
from hf_margin.demo.evidence_stats import Interval, mean_interval, paired_difference


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records in the JSON-lines file `path` (none when it does not exist). Only complete lines count: a last
    line without its newline is a record another process is still appending."""
    if not path.is_file():
        return []
    *complete, _unterminated = path.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in complete if line.strip()]


RECORDED_PACKAGES = ("torch", "transformers", "sentence-transformers", "trl", "peft", "accelerate", "datasets", "numpy")


def run_environment() -> dict[str, str]:
    """What a record's numbers depend on besides its seed: the Python and package versions (`RECORDED_PACKAGES` that
    are installed), the machine, and the CPU kernels torch picked (runs split across sessions may land on machines or
    releases whose floating-point results differ)."""
    environment = {"python": platform.python_version(), "machine": platform.machine()}
    environment |= {package: version for package in RECORDED_PACKAGES if (version := installed_version(package))}
    if "torch" in sys.modules:  # never imported just for this
        environment["torch cpu capability"] = sys.modules["torch"].backends.cpu.get_cpu_capability()
    return environment


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append `record` to `path` as one JSON line, with its `run_environment` under "environment" (unless it has
    one)."""
    with path.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps({"environment": run_environment()} | record) + "\n")


def save_summary(out_dir: Path, summary: dict[str, Any]) -> None:
    """Write `summary` to ``out_dir / "summary.json"`` in one step (a temporary file renamed over it), so that a
    reader, or another process writing it too, never sees half of it."""
    partial = out_dir / f"summary.json.{os.getpid()}.partial"
    partial.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    os.replace(partial, out_dir / "summary.json")


def setup_json(setup: Any) -> dict[str, Any]:
    """A setup dataclass's fields for a summary, less `only_seeds` (which process ran which seeds is not part of the
    results, and the summary covers every record)."""
    fields = asdict(setup)
    fields.pop("only_seeds", None)
    return fields


def check_methods_and_seeds(methods: Sequence[str], known: Sequence[str], seeds: int) -> None:
    """Raise a ValueError naming `methods` when one is not in `known`, or `seeds` when it is below 1."""
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"unknown `methods` {unknown}; known: {', '.join(known)}")
    if seeds < 1:
        raise ValueError(f"`seeds` must be >= 1, got {seeds}")


def seeds_to_run(seeds: int, only_seeds: Sequence[int]) -> list[int]:
    """The seeds one process runs: `only_seeds` (to split a run between processes that share its folder), or all
    `seeds` when it is empty. Raise a ValueError naming `only_seeds` when one is outside [0, `seeds`)."""
    if any(seed not in range(seeds) for seed in only_seeds):
        raise ValueError(f"`only_seeds` must be in [0, {seeds}) (`seeds`), got {list(only_seeds)}")
    return sorted(set(only_seeds)) or list(range(seeds))


def paired_row(
    by_key: dict[tuple[Any, ...], dict[str, Any]],
    ours: tuple[Any, ...],
    baseline: tuple[Any, ...],
    metric: str,
    *,
    entry: str,
    names: tuple[str, str, str],
    dataset: str,
) -> DemoRow | None:
    """The demo-table row of `metric` for the records keyed ``(*ours, seed)`` against ``(*baseline, seed)`` over the
    seeds both have: the two means, ours' seconds summed, and a note with the paired difference (its 95% interval and
    seed count; ``n=1`` with one seed). None when they share no seed. `names`: the row's method, baseline and metric."""
    seeds = sorted(key[-1] for key in by_key if key[:-1] == ours and (*baseline, key[-1]) in by_key)
    if not seeds:
        return None
    values = [by_key[(*ours, seed)][metric] for seed in seeds]
    base = [by_key[(*baseline, seed)][metric] for seed in seeds]
    note = f"diff {paired_difference(values, base).format()}" if len(seeds) > 1 else f"n={len(seeds)}"
    seconds = sum(by_key[(*ours, seed)]["seconds"] for seed in seeds)
    return DemoRow(entry, *names, float(np.mean(values)), float(np.mean(base)), seconds, dataset, note)


def interval_json(interval: Interval) -> dict[str, Any]:
    """`interval` as a JSON-ready mapping (mean, low, high, n)."""
    return {"mean": interval.mean, "low": interval.low, "high": interval.high, "n": interval.n}


def summarise(
    records: list[dict[str, Any]],
    *,
    setting: str,
    method: str,
    metrics: Sequence[str],
    baseline_of: Callable[[str], str | None],
    order: Sequence[str],
) -> dict[str, Any]:
    """Per value of the record field `setting`, per method (field `method`, in `order`): the seeds, each metric's
    mean with its 95% interval (only the mean with one seed), and the paired difference to ``baseline_of(method)``
    over the seeds both have (with its verdict; needs 2 seeds)."""
    by_key = {(r[setting], r[method], r["seed"]): r for r in records}
    summary: dict[str, Any] = {}
    for value in sorted({r[setting] for r in records}):
        table: dict[str, Any] = {}
        for name in [m for m in order if any(k[:2] == (value, m) for k in by_key)]:
            seeds = sorted(k[2] for k in by_key if k[:2] == (value, name))
            baseline = baseline_of(name)
            paired = [s for s in seeds if baseline not in (None, name) and (value, baseline, s) in by_key]
            entry: dict[str, Any] = {"seeds": seeds, "baseline": baseline}
            for metric in metrics:
                values = [by_key[(value, name, s)][metric] for s in seeds]
                entry[metric] = interval_json(mean_interval(values)) if len(values) > 1 else {"mean": values[0]}
                if len(paired) > 1:
                    difference = paired_difference(
                        [by_key[(value, name, s)][metric] for s in paired],
                        [by_key[(value, baseline, s)][metric] for s in paired],
                    )
                    entry[f"{metric} minus {baseline}"] = interval_json(difference) | {"verdict": difference.verdict()}
            table[name] = entry
        summary[str(value)] = table
    return summary


def plot_paired_differences(
    results: dict[str, Any], metrics: Sequence[str], path: Path, *, xlabel: str, title: str
) -> None:
    """Draw `paired_differences_figure` to `path` (PNG)."""
    import matplotlib.pyplot as plt

    fig = paired_differences_figure(results, metrics, xlabel=xlabel, title=title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def paired_differences_figure(results: dict[str, Any], metrics: Sequence[str], *, xlabel: str, title: str) -> Any:
    """From a `summarise` result: each method's paired difference to its baseline against the setting (one panel
    per metric, one line per method, the 95% intervals as error bars, zero dashed), as a matplotlib figure.

    Settings are placed at equal spacing in their sorted order (labelled with their values); methods and settings
    without a paired difference (baselines, single seeds) are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = sorted(
        (s for s in results if any(_difference(e, m) for e in results[s].values() for m in metrics)), key=_setting_order
    )
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4), squeeze=False, layout="constrained")
    for axis, metric in zip(axes[0], metrics, strict=True):
        methods = dict.fromkeys(m for s in settings for m, e in results[s].items() if _difference(e, metric))
        for offset, method in enumerate(methods):
            points = [(i, _difference(results[s].get(method, {}), metric)) for i, s in enumerate(settings)]
            shown = [(i + 0.06 * (offset - len(methods) / 2), d) for i, d in points if d]
            x = [i for i, _ in shown]
            y = [d["mean"] for _, d in shown]
            error = [[d["mean"] - d["low"] for _, d in shown], [d["high"] - d["mean"] for _, d in shown]]
            baseline = next(results[s][method]["baseline"] for s in settings if method in results[s])
            axis.errorbar(x, y, yerr=error, marker="o", capsize=3, label=f"{method} - {baseline}")
        axis.axhline(0, color="grey", linestyle="--", linewidth=1)
        axis.set_xticks(range(len(settings)), [str(s) for s in settings])
        axis.set(xlabel=xlabel, ylabel=f"paired difference in {metric}", title=metric)
        if methods:  # a metric without any paired difference (single seeds) has no line to label
            axis.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def _setting_order(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _difference(entry: dict[str, Any], metric: str) -> dict[str, Any] | None:
    key = f"{metric} minus {entry.get('baseline')}"
    return entry.get(key) if "low" in entry.get(key, {}) else None
