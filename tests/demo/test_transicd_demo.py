"""The TransICD demo entry: the pseudo-notes, the rows, and a tiny real run (heavy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("simple_icd_10_cm")

from hf_margin.demo import DemoContext
from hf_margin.demo import transicd as transicd_demo
from hf_margin.demo.data.icd_notes import icd_pseudo_notes


def test_pseudo_notes_are_imbalanced_multi_label_and_split_by_snippet() -> None:
    data = icd_pseudo_notes(num_labels=20, train_notes=400, test_notes=100, seed=1)
    assert len(data.label_names) == 20 and all(len(name) == 3 for name in data.label_names)
    assert data.label_counts == [sum(row[j] for row in data.train_labels) for j in range(20)]
    assert max(data.label_counts) > 5 * max(1, min(data.label_counts)), "natural imbalance is kept"
    sizes = [sum(row) for row in data.train_labels]
    assert min(sizes) >= 1 and max(sizes) <= 4
    train_snippets = {s for text in data.train_texts for s in text.rstrip(".").split(". ")}
    test_snippets = {s for text in data.test_texts for s in text.rstrip(".").split(". ")}
    assert len(test_snippets & train_snippets) < 0.05 * len(test_snippets), "test wording is (almost) unseen"
    assert icd_pseudo_notes(num_labels=20, train_notes=400, test_notes=100, seed=1).train_texts == data.train_texts


def test_every_category_as_a_label_for_the_full_scale_recipe() -> None:
    data = icd_pseudo_notes(num_labels=None, train_notes=60, test_notes=10, min_snippets=2, seed=0)
    assert len(data.label_names) == 1815 and len(set(data.label_names)) == 1815
    assert all(len(row) == 1815 for row in data.train_labels + data.test_labels)
    assert all(1 <= sum(row) <= 4 for row in data.train_labels), "no unlabelled categories are left to add"
    assert sum(data.label_counts) == sum(map(sum, data.train_labels))
    with pytest.raises(ValueError, match="`min_snippets` must be >= 2"):
        icd_pseudo_notes(num_labels=None, min_snippets=1)


def _touch_fresh_64_mib() -> None:
    """A new anonymous mapping of 64 MiB, every page written: resident memory the allocator cannot have held
    already (a numpy temporary may reuse freed pages still resident from earlier tests: seen in CI, peak 0)."""
    import mmap

    size = 64 * 2**20
    with mmap.mmap(-1, size) as memory:
        for offset in range(0, size, mmap.PAGESIZE):
            memory[offset] = 1


def test_training_cost_measures_time_and_the_peak_it_added() -> None:
    cost = transicd_demo.training_cost(_touch_fresh_64_mib)
    assert cost["seconds"] > 0 and 60 <= cost["peak_mib"] < 200


def test_rows_put_transicd_against_each_baseline() -> None:
    metrics = {"micro_auc": 0.9, "macro_f1": 0.4}
    results = {"mean pooling + BCE": metrics, transicd_demo.OURS: {k: v + 0.05 for k, v in metrics.items()}}
    rows = transicd_demo.rows_from_results(results, {transicd_demo.OURS: 3.0, "mean pooling + BCE": 1.0})
    assert [(r.method, r.baseline, r.metric) for r in rows] == [
        (transicd_demo.OURS, "mean pooling + BCE", "micro_auc"),
        (transicd_demo.OURS, "mean pooling + BCE", "macro_f1"),
    ]
    assert rows[0].ours == pytest.approx(0.95) and rows[0].seconds == 3.0


@pytest.mark.heavy
def test_tiny_real_run(tmp_path: Path) -> None:
    setup = transicd_demo.TransICDSetup(
        methods=transicd_demo.METHODS, num_labels=10, train_notes=64, test_notes=32, steps=4, batch_size=8, drw_epoch=0
    )
    rows = transicd_demo.run(DemoContext(out_dir=tmp_path), setup)
    assert len(rows) == 2 * 2 * 5
    report = json.loads((tmp_path / "transicd.json").read_text())
    assert set(report["results"]) == set(transicd_demo.METHODS)
    assert all(0 <= r.ours <= 1 or r.ours != r.ours for r in rows), "in [0, 1] (AUC is NaN for a label-less set)"


def test_reuters_needs_its_files_and_says_how_to_get_them(tmp_path: Path) -> None:
    from hf_margin.demo.data.reuters import load_reuters_grain_corn

    with pytest.raises(FileNotFoundError, match="apt-get download weka"):
        load_reuters_grain_corn(tmp_path)
    with pytest.raises(FileNotFoundError, match="apt-get download weka"):
        transicd_demo.run(DemoContext(out_dir=tmp_path), transicd_demo.TransICDSetup(corpus="reuters"))


def test_reuters_parsing(tmp_path: Path) -> None:
    from hf_margin.demo.data.reuters import EXAMPLES, load_reuters_grain_corn

    folder = tmp_path / EXAMPLES
    folder.mkdir(parents=True)
    articles = r"'WHEAT up\nsharply',{}" + "\n" + r"'Oil\'s price',0" + "\n"  # ARFF escapes, as in the files
    for name, grain in (("Grain", 1), ("Corn", 0)):
        for split in ("train", "test"):
            header = "@relation r\n@attribute Text string\n@attribute class-att {0,1}\n@data\n"
            (folder / f"Reuters{name}-{split}.arff").write_text(header + articles.format(grain))
    data = load_reuters_grain_corn(tmp_path)
    assert data.train_texts == ["WHEAT up\nsharply", "Oil's price"]
    assert data.train_labels == [[1, 0], [0, 0]] and data.label_counts == [1, 0]
