"""The self-training demo entry: a tiny real run on Rotten Tomatoes with MiniLM features."""

from __future__ import annotations

import json
from pathlib import Path

from hf_margin.demo import DemoContext
from hf_margin.demo.self_training import SelfTrainingSetup, run


def test_tiny_run_compares_with_the_labelled_only_round(tmp_path: Path) -> None:
    setup = SelfTrainingSetup(labels_per_class=5, rows_per_class=60, rounds=2, threshold=0.0, steps=3)
    rows = run(DemoContext(out_dir=tmp_path), setup)
    assert len(rows) == 1 and rows[0].entry == "self_training" and rows[0].metric == "accuracy"
    assert 0.0 <= rows[0].ours <= 1.0 and 0.0 <= rows[0].baseline_value <= 1.0
    history = json.loads((tmp_path / "self_training.json").read_text())["history"]
    assert history[0]["train_rows"] == 10 and history[0]["metrics"]["accuracy"] == rows[0].baseline_value
    assert history[1]["accepted"] == history[0]["unlabelled_left"], "threshold 0 accepts every unlabelled row"
    assert (
        len(history) == 2 and history[1]["unlabelled_left"] == 0 and rows[0].ours == history[1]["metrics"]["accuracy"]
    )
    assert 0.0 <= history[1]["pseudo_label_accuracy"] <= 1.0
