"""The PMA demo entry: the stratified digits split in [0, 1], and a tiny real run (train a CNN, attack with PMA and
PGD-CE through pma_robust_accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hf_margin.demo import DemoContext
from hf_margin.demo import robustness as demo


def test_digits_split_is_stratified_and_in_the_unit_box() -> None:
    split = demo.digits_split(demo.RobustnessSetup())
    assert split["train_x"].shape == (1437, 64) and split["test_x"].shape == (360, 64)
    assert float(split["test_x"].min()) >= 0 and float(split["test_x"].max()) <= 1
    counts = torch.bincount(split["test_y"], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_tiny_real_run(tmp_path: Path) -> None:
    setup = demo.RobustnessSetup(epsilons=(0.1,), steps=6, train_steps=40, max_samples=60)
    rows = demo.run(DemoContext(out_dir=tmp_path, progress=lambda items, **_: items), setup)
    report = json.loads((tmp_path / "robustness.json").read_text())
    pma, pgd = report["results"]["pma eps=0.1"], report["results"]["pgd eps=0.1"]
    assert pma["samples"] == pgd["samples"] == 60 and pma["clean accuracy"] == pgd["clean accuracy"] > 0.5
    assert pma["robust accuracy"] <= pma["clean accuracy"] and pgd["robust accuracy"] <= pgd["clean accuracy"]
    assert len(rows) == 1 and rows[0].baseline == "PGD-CE (eps=0.1)" and 0 <= rows[0].ours <= 1
