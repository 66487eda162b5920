"""`python -m benchmarks.run`: each row stamped with when and how it was measured; ``--only`` keeps the other rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks._harness import BenchRow


def _row(benchmark: str, ours_ms: float) -> BenchRow:
    return BenchRow(benchmark, "case", "anchor", ours_ms, 2.0, 10.0, 20.0)


def test_only_replaces_the_rerun_benchmarks_rows_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "RESULTS.md"
    lines = run.markdown_rows([_row("kept", 1.0), _row("rerun", 1.0), _row("rerun", 1.5)], "cpu", quick=False)
    out.write_text(run.HEADER + "\n".join(lines) + "\n")
    monkeypatch.setattr(run, "BENCHMARKS", ("benchmarks.fake_bench",))
    monkeypatch.setitem(sys.modules, "benchmarks.fake_bench", type(sys)("fake"))
    sys.modules["benchmarks.fake_bench"].run = lambda device, quick: [_row("rerun", 4.0)]  # type: ignore[attr-defined]
    monkeypatch.setattr(sys, "argv", ["run", "--only", "fake_bench", "--quick", "--out", str(out)])
    run.main()
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and "| benchmark |" not in line]
    assert [r.split(" | ")[0] for r in rows] == ["| kept", "| rerun"]
    assert "| 4.00 | 2.00 | 2.00 |" in rows[1] and rows[1].endswith("threads, --quick |")
    assert rows[0] == lines[0]  # the kept row is untouched, with its own stamp


def test_every_recorded_row_has_its_stamp() -> None:
    text = (Path(run.__file__).parent / "RESULTS.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "| benchmark |" not in line]
    assert rows and all(row.count(" | ") == 9 and row.rsplit(" | ", 1)[1][:4] == "2026" for row in rows)
