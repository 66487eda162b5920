"""The distillation demo entry: the table rows (MPT vs CE with 1 - NFR, KD and Dual-Head KD vs CE), and a tiny real
run on sklearn digits (old 5-class model, MPT vs CE, DualHeadModel student) writing its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_margin.demo import DemoContext
from hf_margin.demo import distillation as demo


def test_rows_from_results() -> None:
    update = {"CE": {"accuracy": 0.9, "NFR": 0.05}, "MPT": {"accuracy": 0.85, "NFR": 0.01}}
    kd = {"CE": {"accuracy": 0.8}, "KD (T=4)": {"accuracy": 0.82}, "Dual-Head KD": {"accuracy": 0.84}}
    rows = demo.rows_from_results(update, kd, 1.0, 2.0)
    expected = [("MPT (b=4, KL)", "accuracy"), ("MPT (b=4, KL)", "1 - NFR vs old model (old classes)")]
    assert [(r.method, r.metric) for r in rows][:2] == expected
    assert rows[1].ours == pytest.approx(0.99) and rows[1].baseline_value == pytest.approx(0.95)
    assert {r.method for r in rows[2:]} == {"KD (T=4)", "Dual-Head KD"} and all(
        r.baseline_value == 0.8 for r in rows[2:]
    )


def test_tiny_real_run(tmp_path: Path) -> None:
    setup = demo.DistillationSetup(update_steps=5, kd_steps=5, batch_size=32, teacher_hidden=16)
    rows = demo.run(DemoContext(out_dir=tmp_path), setup)
    report = json.loads((tmp_path / "distillation.json").read_text())
    assert set(report["model_update"]) == {"old model (5 classes)", "CE", "MPT"}
    assert set(report["distillation"]) == {"teacher", "CE", "KD (T=4)", "Dual-Head KD"}
    mpt = report["model_update"]["MPT"]
    assert 0 <= mpt["NFR"] <= 1 and mpt["relative NFR"] >= 0
    assert len(rows) == 4 and all(0 <= r.ours <= 1 and 0 <= r.baseline_value <= 1 for r in rows)
