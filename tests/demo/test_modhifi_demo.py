"""The ModHiFi demo entry: a tiny real run on digits (pruning beats magnitude pruning, unlearning forgets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_margin.demo import DemoContext
from hf_margin.demo import modhifi as demo


def test_tiny_real_run(tmp_path: Path) -> None:
    setup = demo.ModHiFiSetup(
        seeds=(0, 1), hidden=24, steps=50, test_rows=300, calibration_rows=100, sparsities=(0.75,), step_fraction=0.5
    )
    rows = demo.run(DemoContext(out_dir=tmp_path), setup)
    report = json.loads((tmp_path / "modhifi.json").read_text())
    assert (tmp_path / "modhifi.png").stat().st_size > 0
    pruning, forget, other = rows
    assert len(report["runs"]) == 2 and pruning.metric == "accuracy at sparsity 0.75"
    assert pruning.ours > pruning.baseline_value, "ModHiFi-P keeps more accuracy than magnitude pruning"
    before = report["summary"]["before unlearning"]["forget"][0]
    assert forget.lower_is_better and forget.ours < before - 0.5, "ModHiFi-U forgets the digit"
    assert other.ours > 0.5, "and keeps most of the others"
    with pytest.raises(ValueError, match="unlearn_layer"):
        demo.run(DemoContext(out_dir=tmp_path), demo.ModHiFiSetup(unlearn_layer="1"))
