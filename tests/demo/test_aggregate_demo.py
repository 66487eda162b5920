"""The aggregate-responses demo entry on scikit-learn's diabetes data (bundled): bag size 1 makes the three losses
ordinary least squares; rows, report and sane errors."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hf_margin.demo import DemoContext, format_table
from hf_margin.demo import aggregate as demo


def test_tiny_real_run(tmp_path: Path) -> None:
    setup = demo.AggregateSetup(bag_sizes=(1, 8), seeds=(0, 1))
    rows = demo.run(DemoContext(out_dir=tmp_path), setup)
    assert [r.method for r in rows] == [
        "bag-level, k=1",
        "bag-level, k=8",
        "interpolating (rho=0.5), k=1",
        "interpolating (rho=0.5), k=8",
    ]
    report = json.loads((tmp_path / "aggregate.json").read_text())["test_mse"]
    ols = report["instance-level"]["1"][0]
    assert abs(report["bag-level"]["1"][0] - ols) < 1e-6 * ols
    # k = 1 is least squares: compare with the closed form on the same split
    x, y, test_x, test_y = demo.load_split(setup.test_fraction)
    design = torch.cat([x, torch.ones(len(y), 1, dtype=x.dtype)], 1)
    coef = torch.linalg.lstsq(design, y[:, None]).solution
    closed = float(
        ((torch.cat([test_x, torch.ones(len(test_y), 1, dtype=x.dtype)], 1) @ coef).squeeze(1) - test_y).pow(2).mean()
    )
    assert abs(ols - closed) < 1e-3 * closed
    assert all(r.ours < 2 * float(test_y.var()) for r in rows)  # no run diverges
    assert all(r.seconds > 0 for r in rows)  # the fits of one k each, not a per-fit mean
    assert "0.0 s" not in format_table(rows)  # fits of a few ms show as such, not as zero
