"""The margin-heads demo entry on a tiny budget (digits, one fold, one epoch): it runs end to end and reports
sane numbers. The real comparison is `hf-margin demo` / recipes/margin_heads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_margin.demo import DemoContext, DemoRow, format_table, run_demos, select

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("matplotlib")


def test_tiny_run_writes_table_json_and_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hf_margin.demo import margin_heads

    monkeypatch.delenv("HF_MARGIN_DATA", raising=False)
    tiny = margin_heads.VerificationSetup(folds=1, groups=2, epochs=1, max_images_per_identity=8)
    monkeypatch.setattr(margin_heads, "VerificationSetup", lambda: tiny)
    context = DemoContext(out_dir=tmp_path, data_dir=None)
    rows = run_demos(select(["margin_heads"]), context)
    assert len(rows) == 2 * (len(margin_heads.DEMO_HEADS) - 1)
    assert {r.dataset for r in rows} == {"sklearn digits"}
    assert all(0.0 <= r.ours <= 1.0 and 0.0 <= r.baseline_value <= 1.0 and r.seconds > 0 for r in rows)
    report = json.loads((tmp_path / "results.json").read_text())
    assert len(report["rows"]) == len(rows) and "margin_heads" in report["entry_seconds"]
    details = json.loads((tmp_path / "margin_heads.json").read_text())
    assert set(details["heads"]) == set(margin_heads.DEMO_HEADS)
    for picture in ("results.png", "margin_heads_roc.png"):
        assert (tmp_path / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_recipe_extras_combined_margin_and_partial_fc_train(monkeypatch: pytest.MonkeyPatch) -> None:
    from hf_margin.demo import margin_heads
    from hf_margin.demo.data.faces import load_identities

    monkeypatch.delenv("HF_MARGIN_DATA", raising=False)
    extras = ("combined margin (1, 0.3, 0.2)", "Partial FC ArcFace (50% of centres)")
    tiny = margin_heads.VerificationSetup(folds=1, groups=2, epochs=1, max_images_per_identity=8, heads=extras)
    results, _ = margin_heads.compare_heads(load_identities(), tiny)
    assert set(results) == {margin_heads.BASELINE, *extras}
    assert all(0.0 <= result.accuracy <= 1.0 and result.seconds > 0 for result in results.values())
    with pytest.raises(ValueError, match="unknown `heads`"):
        margin_heads.compare_heads(load_identities(), margin_heads.VerificationSetup(heads=("SphereFace",)))


def test_format_table_aligns_columns() -> None:
    rows = [DemoRow("e", "ArcFace", "softmax CE", "TAR", 0.5, 0.25, 1.23, "d")]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["method", "baseline", "metric", "ours", "baseline's", "wall", "time"]
    assert "0.5000" in lines[2] and "0.2500" in lines[2] and "1.2 s" in lines[2]
