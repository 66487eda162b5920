"""The DRM demo entry on a tiny configuration: one row per held-out chapter, accuracies in [0, 1]."""

from __future__ import annotations

from pathlib import Path

from hf_margin.demo import DemoContext
from hf_margin.demo.drm import DRMSetup, run


def test_drm_demo_tiny(tmp_path: Path) -> None:
    setup = DRMSetup(per_class=8, steps=5, chapters=("19", "13", "7"))
    rows = run(DemoContext(out_dir=tmp_path), setup)
    assert [r.method for r in rows] == [f"DRM (held out chapter {c})" for c in setup.chapters]
    assert all(0.0 <= r.ours <= 1.0 and 0.0 <= r.baseline_value <= 1.0 for r in rows)
