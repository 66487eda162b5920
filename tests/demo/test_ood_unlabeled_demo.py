"""The RSS demo entry (arXiv 2310.00027): a small Gaussian mixture where the unlabelled rows must help."""

from __future__ import annotations

import json
from pathlib import Path

from hf_margin.demo import DemoContext
from hf_margin.demo.ood_unlabeled import OODUnlabeledSetup, run


def test_tiny_mixture_rss_beats_the_labelled_only_baseline(tmp_path: Path) -> None:
    setup = OODUnlabeledSetup(
        dim=20,
        labeled=4,
        unlabeled=1000,
        large_labeled=400,
        test_rows=2000,
        shifts=(0.0,),
        seeds=1,
        steps=40,
        warmup_steps=10,
        batch_size=200,
        learning_rate=0.1,
    )
    rows = run(DemoContext(out_dir=tmp_path), setup)
    assert [r.method for r in rows] == [
        "ERM, m = 400 (reference)",
        "RSS, gamma = inf, alpha = 0.0 ||mu0||",
        "RSS, gamma = 1.0, alpha = 0.0 ||mu0||",
    ]
    assert all(r.baseline == "ERM, m = 4" and r.metric == "test accuracy" for r in rows)
    erm = rows[0].baseline_value
    # d = 20, m = 4: the labelled mean direction gives about Phi(1 / sqrt(1 + d / m)) = 0.66; the unlabelled
    # rows' low-density direction is mu0 (Bayes accuracy Phi(1) = 0.84)
    assert 0.5 < erm < 0.75 and rows[1].ours > erm + 0.05 and rows[0].ours > 0.8
    assert "poster (non-robust): 0.82" in rows[1].note
    report = json.loads((tmp_path / "ood_unlabeled.json").read_text())
    assert report["runs"][0]["erm"] == erm and set(report["runs"][0]) == {
        "erm",
        "erm_large",
        "rss@0.0",
        "rss_robust@0.0",
    }
