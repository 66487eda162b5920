"""The metric-learning demo entry on a tiny budget (digits, few images and steps): it runs end to end and reports
sane numbers; ours and PML's MS + miner train to nearly the same retrieval quality."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_margin.demo import DemoContext

pytest.importorskip("efficientnet_lite_pytorch")


def test_tiny_run_reports_every_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hf_margin.demo import metric_learning

    monkeypatch.delenv("HF_MARGIN_DATA", raising=False)
    setup = metric_learning.MetricLearningSetup(max_images_per_identity=12, steps=5, image_size=32)
    rows = metric_learning.run(DemoContext(out_dir=tmp_path, data_dir=None), setup)
    assert len(rows) == 9 and {r.dataset for r in rows} == {"sklearn digits"}
    assert {(r.method, r.baseline) for r in rows} == {
        ("MS + miner", "PML TripletMarginLoss"),
        ("MS + miner", "PML MS + miner"),
        ("MS + miner + TCM", "PML TripletMarginLoss"),
    }
    for row in rows:
        assert row.ours >= 0.0 and row.baseline_value >= 0.0 and row.seconds > 0
        if not row.metric.startswith("OPIS"):
            assert row.ours <= 1.0 and row.baseline_value <= 1.0
        if row.baseline == "PML MS + miner":
            assert row.ours == pytest.approx(row.baseline_value, abs=0.02)
