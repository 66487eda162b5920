"""The probes demo entry: rows and report on stand-in features (shots capped by the smallest class), and a tiny
real run on Rotten Tomatoes MiniLM features."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hf_margin.demo import DemoContext
from hf_margin.demo import probes as demo


def fake_features(seed: int, per_class: int) -> demo.FeatureSplit:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(per_class)
    x = torch.randn(len(labels), 4, generator=g) + 3 * torch.nn.functional.one_hot(labels, 4)[:, :4].float()
    return x, labels, x + 0.1 * torch.randn(x.shape, generator=g), labels, f"fake {per_class}"


def test_rows_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "text_features", lambda setup: fake_features(0, 30))
    monkeypatch.setattr(demo, "image_features", lambda setup, data_dir=None: fake_features(1, 5))
    setup = demo.ProbesSetup(shots_per_class=(1, 5, 20), seeds=(0, 1))
    rows = demo.run(DemoContext(out_dir=tmp_path), setup)
    assert [(r.dataset, r.method) for r in rows] == [
        ("fake 30", "NB probe, 1/class"),
        ("fake 30", "NB probe, 5/class"),
        ("fake 30", "NB probe, 20/class"),
        ("fake 5", "NB probe, 1/class"),
        ("fake 5", "NB probe, 5/class"),
    ]
    assert all(r.baseline == r.method.replace("NB", "LR") and 0 <= r.ours <= 1 for r in rows)
    report = json.loads((tmp_path / "probes.json").read_text())
    assert len(report["curves"]["fake 30"]["naive Bayes"]["20"]) == 2
    assert rows[2].ours > 0.8  # well separated stand-in classes
    with pytest.raises(ValueError, match="tasks"):
        demo.run(DemoContext(out_dir=tmp_path), demo.ProbesSetup(tasks=("audio",)))


def test_tiny_real_text_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_MARGIN_CACHE", str(tmp_path / "cache"))
    setup = demo.ProbesSetup(shots_per_class=(1, 10), seeds=(0,), text_rows=60, tasks=("text",))
    rows = demo.run(DemoContext(out_dir=tmp_path), setup)
    assert len(rows) == 2 and rows[0].dataset.startswith("Rotten Tomatoes")
    assert all(0 <= r.ours <= 1 and 0 <= r.baseline_value <= 1 for r in rows)
