"""The condensation demo entry (DC vs DCC vs random real images on digits): a tiny real run."""

from __future__ import annotations

import json
from pathlib import Path

from hf_margin.demo import DemoContext
from hf_margin.demo import condensation as demo


def test_tiny_real_run(tmp_path: Path) -> None:
    setup = demo.CondensationSetup(
        images_per_class=(1,), outer_loop=2, inner_loop=2, network_steps=1, batch_real=8, train_steps=30, eval_seeds=1
    )
    rows = demo.run(DemoContext(out_dir=tmp_path, progress=lambda items, **_: items), setup)
    report = json.loads((tmp_path / "condensation.json").read_text())
    accuracies = report["results"]["ipc 1"]
    assert {"dc", "dcc", "random real"} <= set(accuracies)
    assert all(0.1 < accuracies[m] <= 1 for m in ("dc", "dcc", "random real"))  # above chance with 10 images
    assert [(r.method, r.baseline) for r in rows] == [
        ("DCC (ipc 1)", "DC (ipc 1)"),
        ("DCC (ipc 1)", "random real (ipc 1)"),
        ("DC (ipc 1)", "random real (ipc 1)"),
    ]
    assert rows[0].ours == accuracies["dcc"] and rows[0].baseline_value == accuracies["dc"]
