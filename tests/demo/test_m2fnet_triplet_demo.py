"""The M2FNet adaptive-margin triplet demo entry (arXiv 2206.02187) on sklearn's digits as identities, with
synthetic features in place of the frozen backbone's (that path is the metric-learning demo's `load_features`,
run by tests/demo/test_metric_learning_demo.py): the default trains, and every objective starts from the same
projection per seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import Tensor

from hf_margin.demo import DemoContext
from hf_margin.demo import m2fnet_triplet as demo
from hf_margin.demo.data.faces import IdentityImages


def hidden_identity_features(data: IdentityImages, image_size: int) -> Tensor:
    """Each identity a point in 4 of 32 dimensions; the other 28 hold larger noise a projection must learn to drop."""
    g = torch.Generator().manual_seed(0)
    labels = torch.from_numpy(data.labels)
    centres = torch.randn(int(labels.max()) + 1, 4, generator=g)
    signal = centres[labels] + 0.3 * torch.randn(len(labels), 4, generator=g)
    return torch.cat([signal, 2 * torch.randn(len(labels), 28, generator=g)], 1)


def run_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: int) -> dict[str, dict]:
    monkeypatch.delenv("HF_MARGIN_DATA", raising=False)
    monkeypatch.setattr(demo, "load_features", hidden_identity_features)
    setup = demo.M2FNetSetup(
        max_images_per_identity=10, steps=steps, learning_rate=1e-2, embedding_size=8, seeds=2, identities_per_batch=4
    )
    rows = demo.run(DemoContext(out_dir=tmp_path, data_dir=None), setup)
    assert len(rows) == 3 * len(demo.METRICS) and {row.dataset for row in rows} == {"sklearn digits"}
    return json.loads((tmp_path / f"{demo.ENTRY}.json").read_text())


def test_tiny_run_trains_the_projection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = run_tiny(tmp_path, monkeypatch, steps=30)
    assert set(report["summary"]) == {*demo.objectives(), "untrained projection"}
    assert all(len(scores["MAP@R"]) == 2 for scores in report["per_seed"].values())
    map_r = {name: summary["MAP@R"]["mean"] for name, summary in report["summary"].items()}
    assert map_r[demo.OURS] > map_r["untrained projection"] + 0.1, map_r  # measured 0.39 vs 0.25
    assert map_r[demo.OURS] > map_r[demo.PRINTED], map_r  # the printed form pulls negatives in (0.30)


def test_every_objective_starts_from_the_same_projection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no steps every objective scores exactly as the untrained projection, seed by seed."""
    summary = run_tiny(tmp_path, monkeypatch, steps=0)["summary"]
    assert all(scores == summary["untrained projection"] for scores in summary.values())
    assert summary["untrained projection"]["MAP@R"]["std"] > 0, "the seeds draw different projections"
