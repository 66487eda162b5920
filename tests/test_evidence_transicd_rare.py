"""Evidence experiment 4's bookkeeping with the training replaced by a stand-in (the real training is the TransICD
demo's `train_and_predict`, tested with it): one record per (method, seed), restart skips them, the BCE baseline is
always trained, the summary pairs each method with BCE by seed, and the long-tail bands are counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hf_margin.demo import DemoContext, transicd
from hf_margin.demo.data import icd_notes
from hf_margin.demo.evidence import transicd_rare
from hf_margin.demo.evidence.transicd_rare import BASELINE, RareLabelsSetup, label_bands, label_metrics, run
from hf_margin.demo.transicd import OURS, WITH_DRW

GAIN = {BASELINE: 0.0, OURS: 0.02, WITH_DRW: -0.01}


def _stand_ins(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []

    def notes(num_labels: int, train_notes: int, test_notes: int, min_snippets: int, seed: int) -> Any:
        labels = [[int(j == i % 3) for j in range(3)] for i in range(6)]
        texts = [f"note {i} of seed {seed}" for i in range(6)]
        return icd_notes.PseudoNotes(texts, labels, texts, labels, ["A00", "B00", "C00"], [0, 5, 60])

    def train_and_predict(method: str, data: Any, train: Any, test: Any, tokenizer: Any, setup: Any, out: Any) -> Any:
        calls.append((method, setup.seed))
        return np.full((6, 3), 0.3 + 0.05 * setup.seed + GAIN[method]), {"seconds_per_step": 0.5, "peak_mib": 1.0}

    def metrics(probabilities: np.ndarray, data: Any) -> dict[str, float]:
        value = float(probabilities[0, 0])
        return {"macro_f1": value, "macro_auc": value + 0.4, "micro_f1": value + 0.1, "micro_auc": value + 0.5}

    monkeypatch.setattr(icd_notes, "icd_pseudo_notes", notes)
    monkeypatch.setattr(transicd, "train_and_predict", train_and_predict)
    monkeypatch.setattr(transicd_rare, "label_metrics", metrics)
    return calls


def test_records_summary_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stand_ins(monkeypatch)
    setup = RareLabelsSetup(methods=(OURS, WITH_DRW), seeds=3, steps=10)
    rows = run(DemoContext(out_dir=tmp_path), setup)
    assert sorted(calls) == sorted((m, s) for m in (BASELINE, OURS, WITH_DRW) for s in range(3))
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 9 and all(r["seconds"] == 5.0 for r in records)
    assert records[0]["label_bands"] == {"none": 1, "rare (1-10)": 1, "11-50": 0, "over 50": 1}
    summary = json.loads((tmp_path / "summary.json").read_text())["results"]
    ldam = summary[OURS]["macro_f1 minus " + BASELINE]
    assert ldam["mean"] == pytest.approx(0.02) and ldam["verdict"] == "better" and ldam["n"] == 3
    assert summary[WITH_DRW]["macro_f1 minus " + BASELINE]["verdict"] == "worse"
    assert summary[BASELINE]["macro_f1"]["mean"] == pytest.approx(0.35)
    assert {row.method for row in rows} == {OURS, WITH_DRW} and len(rows) == 2 * 4
    assert all("(n=3)" in row.note for row in rows)
    run(DemoContext(out_dir=tmp_path), setup)  # a restart trains nothing more
    assert len(calls) == 9


def test_setup_for_seed_is_the_papers_encoder_on_icd_notes() -> None:
    demo = RareLabelsSetup(num_labels=120, steps=7).for_seed(4)
    assert (demo.seed, demo.num_labels, demo.steps, demo.encoder, demo.corpus) == (4, 120, 7, "transformer", "icd")


def test_label_metrics_add_macro_scores_over_the_rare_labels_alone() -> None:
    # labels: 0 training notes, 3 (rare), 5 (rare), 60; the rare ones are predicted right, the others wrong
    targets = [[1, 1, 0, 1], [0, 0, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0]]
    probabilities = np.array([[0.2, 0.9, 0.1, 0.1], [0.8, 0.2, 0.7, 0.3], [0.1, 0.6, 0.9, 0.8], [0.7, 0.1, 0.2, 0.9]])
    data = icd_notes.PseudoNotes([], [], ["note"] * 4, targets, ["A00", "B00", "C00", "D00"], [0, 3, 5, 60])
    metrics = label_metrics(probabilities, data)
    assert metrics["rare_macro_f1"] == 1.0 and metrics["rare_macro_auc"] == 1.0
    assert metrics["macro_f1"] == 0.5 and metrics["macro_auc"] == 0.5
    no_rare = icd_notes.PseudoNotes([], [], ["note"] * 4, targets, ["A00", "B00", "C00", "D00"], [0, 20, 30, 60])
    assert "rare_macro_f1" not in label_metrics(probabilities, no_rare)


def test_label_bands() -> None:
    assert label_bands([0, 0, 1, 10, 11, 50, 51]) == {"none": 2, "rare (1-10)": 2, "11-50": 2, "over 50": 1}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (RareLabelsSetup(methods=("focal",)), r"unknown `methods` \['focal'\]"),
        (RareLabelsSetup(seeds=0), "`seeds` must be >= 1"),
    ],
)
def test_bad_setup_is_an_error_naming_the_field(tmp_path: Path, setup: RareLabelsSetup, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(DemoContext(out_dir=tmp_path), setup)
