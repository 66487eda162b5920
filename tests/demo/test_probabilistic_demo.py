"""The afCRPS forecasting demo entry: the CO2 windows (no look-ahead across the split), the noisy forecaster's
members, the climatology reference, and a tiny real run of all four methods."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from hf_margin.demo import DemoContext
from hf_margin.demo import probabilistic as demo
from hf_margin.functional.crps import fair_crps


def test_windows_are_standardised_and_split_by_year() -> None:
    setup = demo.ForecastSetup(window=8, horizon=2)
    split = demo.load_windows(setup)
    assert split["train_x"].shape[1] == 8 and (split["train_x"][:, -1] == 0).all(), "relative to the latest week"
    assert abs(split["train_y"].std().item() - 1) < 1e-3
    assert len(split["train_y"]) > 1000 and len(split["test_y"]) > 300


def test_members_differ_only_through_the_noise() -> None:
    model = demo.NoisyForecaster(window=5, noise_dim=3, hidden=8)
    history = torch.randn(4, 5)
    point = model(history, 6, None)
    assert point.shape == (4, 6) and (point == point[:, :1]).all()
    ensemble = model(history, 6, torch.Generator().manual_seed(0))
    assert (ensemble.std(dim=1) > 0).all()


def test_climatology_is_the_fair_crps_of_the_training_changes() -> None:
    train, target = torch.tensor([0.0, 1.0, 3.0]), torch.tensor([0.5, 2.0])
    expected = fair_crps(train.repeat(2, 1), target)
    torch.testing.assert_close(demo.climatology_crps(train, target), expected)


def test_tiny_real_run(tmp_path: Path) -> None:
    setup = demo.ForecastSetup(steps=15, eval_members=8, hidden=16)
    rows = demo.run(DemoContext(out_dir=tmp_path, progress=lambda items, **_: items), setup)
    report = json.loads((tmp_path / "probabilistic.json").read_text())
    assert set(report["results"]) == set(demo.METHODS)
    assert report["results"]["MSE point"]["spread/skill"] == 0
    assert len(rows) == 5 and all(r.method == demo.OURS and math.isfinite(r.ours) for r in rows)
    assert {r.baseline for r in rows} == set(demo.METHODS) - {demo.OURS}
