"""The evidence runs' shared bookkeeping: records appended and read by processes that share a folder, the summary
written in one step, the seeds a process runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from hf_margin.demo.evidence.records import append_record, read_records, save_summary, seeds_to_run, setup_json


def test_a_record_still_being_appended_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    assert read_records(path) == []
    append_record(path, {"method": "a", "seed": 0})
    append_record(path, {"method": "b", "seed": 0})
    with path.open("a", encoding="utf-8") as stream:
        stream.write('{"method": "c", "se')  # another process's write, cut here
    records = read_records(path)
    assert [{k: v for k, v in r.items() if k != "environment"} for r in records] == [
        {"method": "a", "seed": 0},
        {"method": "b", "seed": 0},
    ]


def test_a_record_carries_the_environment_it_ran_in(tmp_path: Path) -> None:
    import platform

    import torch

    path = tmp_path / "records.jsonl"
    append_record(path, {"method": "a", "seed": 0})
    append_record(path, {"method": "b", "seed": 0, "environment": {"python": "given"}})
    first, second = read_records(path)
    environment = first["environment"]
    assert environment["python"] == platform.python_version()
    assert environment["torch"] == torch.__version__
    assert environment["torch cpu capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(environment) >= {"machine", "transformers", "numpy"}
    assert second["environment"] == {"python": "given"}, "a record's own environment is kept"


def test_the_summary_is_replaced_in_one_step(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text('{"old": tru')  # e.g. left half-written by an older version
    save_summary(tmp_path, {"results": {"x": 1.0}})
    assert json.loads((tmp_path / "summary.json").read_text()) == {"results": {"x": 1.0}}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"], "no temporary file left"


def test_seeds_to_run_and_the_summary_setup() -> None:
    assert seeds_to_run(3, ()) == [0, 1, 2] and seeds_to_run(3, (2, 0, 2)) == [0, 2]
    with pytest.raises(ValueError, match=r"`only_seeds` must be in \[0, 3\) \(`seeds`\), got \[-1\]"):
        seeds_to_run(3, (-1,))

    @dataclass
    class Setup:
        seeds: int = 3
        only_seeds: tuple[int, ...] = (1,)

    assert setup_json(Setup()) == {"seeds": 3}, "which process ran which seeds is not a result"
