"""The demo's shared output: the text table, results.json and the results figure (one panel per entry, one scale
per metric, lower-is-better metrics drawn as such)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hf_margin.demo import NEEDS_FACES, DemoContext, DemoEntry, DemoRow, format_table, results_figure, run_demos

ROWS = [
    DemoRow("heads", "ArcFace", "softmax CE", "TAR@FAR=0.01", 0.70, 0.69, 2.8, "ORL faces"),
    DemoRow("heads", "ArcFace", "softmax CE", "verification acc", 0.80, 0.85, 2.8, "ORL faces"),
    DemoRow("bags", "bag-level, k=4", "instance-level, k=4", "test MSE (lower is better)", 3090.0, 4868.0, 0.049, "d"),
    DemoRow("rerank", "3 teachers", "one teacher", "re-ranking speed-up", 5.3, 1.0, 0.0, "d"),
    DemoRow.skipped("faces", "PETAL", "LoRA", "TAR@FAR=0.01", "-", NEEDS_FACES),
]


def test_table_shows_real_times_and_what_was_not_measured() -> None:
    lines = format_table(ROWS).splitlines()
    assert lines[0].split()[-1] == "note"
    assert "2.8 s" in lines[2] and "49 ms" in lines[4]
    assert lines[5].split()[-1] == "-"  # a ratio has no time of its own
    skipped = lines[6]
    assert skipped.endswith(NEEDS_FACES) and "nan" not in skipped
    assert "note" not in format_table(ROWS[:2]).splitlines()[0]


def test_skipped_row() -> None:
    row = ROWS[-1]
    assert not row.measured and math.isnan(row.ours) and row.note == NEEDS_FACES
    assert ROWS[0].measured and ROWS[2].lower_is_better and not ROWS[0].lower_is_better


def test_results_json_is_strict_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    entry = DemoEntry("faces", "unused", "a face entry")
    monkeypatch.setattr(DemoEntry, "run", lambda self, context: ROWS)
    run_demos([entry], DemoContext(out_dir=tmp_path, progress=lambda items, **_: items))
    text = (tmp_path / "results.json").read_text()
    rows = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in results.json"))["rows"]
    assert rows[-1]["ours"] is None and rows[-1]["note"] == NEEDS_FACES
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_has_a_panel_per_entry_and_an_axis_per_metric() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    fig = results_figure(ROWS)
    try:
        panels = fig.subfigs[1:]  # the first holds the title and legend
        assert [p.get_suptitle().split(":")[0] for p in panels] == ["heads", "bags", "rerank", "faces"]
        titles = {
            ax.get_title(loc="left").split(" (")[0]: ax for p in panels for ax in p.axes if ax.get_title(loc="left")
        }
        assert set(titles) == {"TAR@FAR=0.01", "verification acc", "test MSE", "re-ranking speed-up"}
        for metric, ax in titles.items():
            title = ax.get_title(loc="left")
            assert ("lower is better" in title) == (metric == "test MSE")
            assert ("higher is better" in title) == (metric != "test MSE")
        # Each metric on its own scale: the speed-up's axis does not squash the scores.
        low, high = titles["TAR@FAR=0.01"].get_xlim()
        assert high - low < 1 and titles["re-ranking speed-up"].get_xlim()[1] > 5
        # The method's marker is green when better by the metric's direction, red when worse.
        colours = {metric: ax.lines[-1].get_color() for metric, ax in titles.items()}
        assert colours["TAR@FAR=0.01"] == colours["test MSE"] == "tab:green"  # 0.70 > 0.69; 3090 < 4868 (lower)
        assert colours["verification acc"] == "tab:red"
        assert any(NEEDS_FACES in text.get_text() for text in panels[-1].texts)
    finally:
        plt.close(fig)
