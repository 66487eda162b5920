"""The evidence runs' records: one JSON line per finished (method, setting, seed) run, appended as each finishes (so
a stopped run keeps its results and a restart skips them), and their summary: per setting and method, the mean of
every metric with its 95% interval over seeds and the paired difference to the method's baseline."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hf_margin.demo.evidence_stats import Interval, mean_interval, paired_difference


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records in the JSON-lines file `path` (none when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append `record` to `path` as one JSON line."""
    with path.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(record) + "\n")


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
