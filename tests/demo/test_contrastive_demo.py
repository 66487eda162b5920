"""The contrastive demo entry: the split, recall@1, and a tiny real run on the digits."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hf_margin.demo import DemoContext
from hf_margin.demo import contrastive as demo


def test_split_holds_out_thirty_percent_of_each_class() -> None:
    train_x, train_y, _, test_y = demo.load_split(0)
    assert train_x.shape[1] == 64 and len(train_y) + len(test_y) == 1797
    counts = torch.bincount(test_y, minlength=10)
    assert ((counts >= 52) & (counts <= 55)).all() and float(train_x.min()) >= 0 and float(train_x.max()) <= 1


def test_recall_at_1_excludes_the_query_itself() -> None:
    x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0], [1.0, 0.05]])
    assert demo.recall_at_1(x, torch.tensor([0, 0, 1, 1, 0])) == 1.0
    assert demo.recall_at_1(x, torch.tensor([0, 1, 1, 0, 2])) == 0.0


def test_tiny_run(tmp_path: Path) -> None:
    rows = demo.run(DemoContext(out_dir=tmp_path), demo.ContrastiveSetup(steps=3, batch_size=32))
    assert {(r.method, r.baseline) for r in rows} == set(demo.COMPARISONS) and len(rows) == 6
    report = json.loads((tmp_path / "contrastive.json").read_text())
    assert set(report["results"]) == {"InfoNCE tau=0.07", "InfoNCE tau=0.2", "UNPG + ArcFace", "ArcFace"}
    for values in report["results"].values():
        assert 0 <= values["recall@1"] <= 1 and values["-uniformity"] >= 0 and -1 <= values["tolerance"] <= 1
