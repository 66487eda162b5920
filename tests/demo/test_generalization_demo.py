"""The generalization-measures demo entry: Kendall tau against a hand count, and a tiny real run on digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_margin.demo import DemoContext
from hf_margin.demo import generalization as demo


def test_kendall_taus_by_hand() -> None:
    runs = [
        {"gap": 0.1, "a": 1.0, "b": 3.0, "train_accuracy": 1.0, "test_accuracy": 0.9},
        {"gap": 0.2, "a": 2.0, "b": 2.0, "train_accuracy": 1.0, "test_accuracy": 0.8},
        {"gap": 0.3, "a": 3.0, "b": 4.0, "train_accuracy": 1.0, "test_accuracy": 0.7},
    ]
    taus = demo.kendall_taus(runs)
    assert set(taus) == {"a", "b"}
    assert taus["a"] == pytest.approx(1.0)
    assert taus["b"] == pytest.approx(1 / 3)  # pairs: (1,2) discordant, (1,3) and (2,3) concordant


def test_tiny_real_run(tmp_path: Path) -> None:
    setup = demo.GeneralizationSetup(
        runs=((16, 1e-2, 0.0, 200), (16, 1e-2, 0.5, 200), (32, 1e-2, 0.0, 400)), steps=60, test_rows=300
    )
    rows = demo.run(DemoContext(out_dir=tmp_path), setup)
    report = json.loads((tmp_path / "generalization.json").read_text())
    assert len(report["runs"]) == 3 and all(-1 <= r.ours <= 1 for r in rows)
    assert {r.method for r in rows} >= {"inverse_margin", "log_prod_of_spec_over_margin", "path_norm_over_margin"}
    noisy, clean = report["runs"][1], report["runs"][0]
    assert noisy["test_accuracy"] < clean["test_accuracy"], "half the labels flipped hurts the test accuracy"
    assert all(r.baseline == demo.BASELINE for r in rows)
    with pytest.raises(ValueError, match="`runs`"):
        demo.run(DemoContext(out_dir=tmp_path), demo.GeneralizationSetup(runs=setup.runs[:2]))
