"""Evidence experiment 3's bookkeeping with the training replaced by stand-ins (the real training is the embedding
demo's `train`, tested with it): one record per (method, seed) plus the zero-shot reference, restart skips them,
processes split by seed share the folder, a run cut off resumes from its checkpoint,
the MNRL baseline is always trained, the summary pairs each part with MNRL by seed, the plot is written, and the
near-duplicate negatives are counted."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sentence_transformers")
import datasets

from hf_margin.demo import DemoContext, embedding
from hf_margin.demo.data import retrieval
from hf_margin.demo.evidence.embedding_long import (
    BASELINE,
    METRICS,
    ZERO_SHOT,
    LongBudgetSetup,
    duplicate_shares,
    run,
    training_batches,
)

GAIN = {ZERO_SHOT: -0.1, BASELINE: 0.0, "ours: focal": 0.03, "ours: filter": -0.02}
ICD, CHAT = "ICD-10-CM held-out codes", "chatterbot Q->A (not trained on)"


class _Model:
    def __init__(self, method: str, seed: int) -> None:
        self.method, self.seed = method, seed

    def eval(self) -> _Model:
        return self


def _rows() -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {
            "anchor": ["sour blood", "ache", "cholera a", "flu"],
            "positive": ["Acidosis, unspecified", "Headache", "Cholera", "Influenza"],
            "negative_1": ["Other acidosis", "Migraine", "Cholera, unspecified", "Other influenza"],
            "negative_2": ["Alkalosis", "Other headache", "Typhoid", "Cough"],
            "scores": [[0.9, 0.8, 0.1]] * 4,
        }
    )


def _stand_ins(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []

    def prepare(setup: embedding.EmbeddingSetup) -> Any:
        assert setup.full_corpus and setup.chatterbot and setup.mini_batch_size == 32 and setup.near_duplicates
        return _Model(ZERO_SHOT, setup.seed), _rows(), {ICD: ICD, CHAT: CHAT}

    def train(method: str, rows: Any, guide: Any, setup: embedding.EmbeddingSetup, out: Any, every: int) -> Any:
        calls.append((method, setup.seed))
        assert guide.method == ZERO_SHOT and setup.steps == 10 and every == 100
        (embedding.run_dir(out, method, setup) / "checkpoint-10").mkdir(parents=True)
        return _Model(method, setup.seed), [{"loss": 1.0, "mean_focal_weight": 0.2}, {"mean_focal_weight": 0.4}]

    def metrics(model: _Model, data: str) -> dict[str, float]:
        value = 0.5 + 0.05 * model.seed + GAIN[model.method] + (0.1 if data == CHAT else 0.0)
        return {"R@1": value, "R@10": value + 0.2, "nDCG@10": value + 0.1}

    monkeypatch.setattr(embedding, "prepare", prepare)
    monkeypatch.setattr(embedding, "train", train)
    monkeypatch.setattr(retrieval, "retrieval_metrics", metrics)
    return calls


def test_records_summary_plot_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stand_ins(monkeypatch)
    setup = LongBudgetSetup(methods=("ours: focal", "ours: filter"), seeds=3, steps=10, batch_size=2)
    cut_off = embedding.run_dir(tmp_path, "ours: focal", setup.for_seed(1)) / "checkpoint-7"  # a stopped process's
    cut_off.mkdir(parents=True)
    (cut_off / "trainer_state.json").write_text("{}")
    rows = run(DemoContext(out_dir=tmp_path), setup)
    trained = ("ours: focal", "ours: filter", BASELINE)
    assert sorted(calls) == sorted((m, s) for m in trained for s in range(3)), "MNRL is always trained"
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 12 and {r["method"] for r in records} == {ZERO_SHOT, *trained}
    focal = next(r for r in records if r["method"] == "ours: focal" and r["seed"] == 1)
    assert focal["R@1 ICD"] == pytest.approx(0.58) and focal["nDCG@10 chatterbot"] == pytest.approx(0.78)
    assert focal["statistics"] == {"mean_focal_weight": pytest.approx(0.3)} and focal["training_rows"] == 4
    assert focal["resumed_from_step"] == 7 and {r["resumed_from_step"] for r in records if r is not focal} == {0}
    assert not list((tmp_path / "runs").iterdir()), "a run's checkpoints are removed once its record is written"
    assert 0 < focal["duplicates"]["own hard negatives"] <= 1 and focal["duplicates"]["batches"] > 0
    summary = json.loads((tmp_path / "summary.json").read_text())["results"]["all"]
    difference = summary["ours: focal"][f"R@1 ICD minus {BASELINE}"]
    assert difference["mean"] == pytest.approx(0.03) and difference["verdict"] == "better" and difference["n"] == 3
    assert summary["ours: filter"][f"nDCG@10 ICD minus {BASELINE}"]["verdict"] == "worse"
    assert summary[BASELINE][f"R@1 ICD minus {ZERO_SHOT}"]["mean"] == pytest.approx(0.1), "MNRL vs zero-shot"
    assert summary[ZERO_SHOT]["baseline"] is None
    assert (tmp_path / "paired_differences.png").stat().st_size > 1000
    assert {(r.method, r.baseline) for r in rows} == {(m, BASELINE) for m in trained[:2]} | {(BASELINE, ZERO_SHOT)}
    assert len(rows) == 3 * len(METRICS) and all("(n=3)" in row.note for row in rows)
    run(DemoContext(out_dir=tmp_path), setup)  # a restart trains nothing more
    assert len(calls) == 9 and len((tmp_path / "records.jsonl").read_text().splitlines()) == 12


def test_processes_split_by_only_seeds_share_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stand_ins(monkeypatch)
    setup = LongBudgetSetup(methods=("ours: focal",), seeds=3, steps=10, batch_size=2)
    run(DemoContext(out_dir=tmp_path), replace(setup, only_seeds=(2, 0)))
    assert sorted(calls) == [(m, s) for m in (BASELINE, "ours: focal") for s in (0, 2)]
    run(DemoContext(out_dir=tmp_path), replace(setup, only_seeds=(1,)))
    assert sorted(calls[4:]) == [(BASELINE, 1), ("ours: focal", 1)]
    summary = json.loads((tmp_path / "summary.json").read_text())["results"]["all"]
    assert summary["ours: focal"]["seeds"] == [0, 1, 2], "the summary covers the other process's records"
    assert summary["ours: focal"][f"R@1 ICD minus {BASELINE}"]["n"] == 3


def test_a_run_folder_belongs_to_one_setup(tmp_path: Path) -> None:
    setup = LongBudgetSetup().for_seed(0)
    folder = embedding.run_dir(tmp_path, "ours: focal", setup)
    assert folder == embedding.run_dir(tmp_path, "ours: focal", replace(setup, methods=("ours: focal",)))
    others = [replace(setup, steps=999), replace(setup, seed=1), replace(setup, learning_rate=1e-4)]
    assert all(embedding.run_dir(tmp_path, "ours: focal", other) != folder for other in others), "not resumed"
    assert embedding.run_dir(tmp_path, "ours: mixing", setup) != folder


def test_setup_for_seed_is_the_demo_on_every_description_and_chatterbot() -> None:
    demo = LongBudgetSetup(steps=7, rank_last=20).for_seed(2)
    assert (demo.seed, demo.steps, demo.rank_first, demo.rank_last) == (2, 7, 0, 20)
    assert demo.full_corpus and demo.chatterbot and demo.focal_normalize and demo.near_duplicates
    assert demo.mini_batch_size == 32


def test_duplicate_shares_count_negatives_of_the_same_meaning() -> None:
    rows = _rows()
    shares = duplicate_shares(rows, [[0, 1], [2, 3]])
    # batch [0, 1]: query 0 sees 5 negatives (1 positive, 4 hard), 1 a duplicate ("Other acidosis"); query 1 too
    # ("Other headache"): 2 of 10; batch [2, 3]: "Cholera, unspecified" and "Other influenza", 2 of 10.
    assert shares["in-batch"] == pytest.approx(4 / 20)
    assert shares["own hard negatives"] == pytest.approx(4 / 8) and shares["batches"] == 2
    batches = training_batches(rows, batch_size=2, count=5, seed=0)
    assert len(batches) == 5 and all(len(b) == 2 and len(set(b)) == 2 for b in batches), "epochs are chained"
    assert training_batches(rows, batch_size=2, count=5, seed=0) == batches, "seeded"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (LongBudgetSetup(methods=("triplet",)), r"unknown `methods` \['triplet'\]"),
        (LongBudgetSetup(seeds=0), "`seeds` must be >= 1"),
        (LongBudgetSetup(seeds=3, only_seeds=(1, 3)), r"`only_seeds` must be in \[0, 3\) \(`seeds`\), got \[1, 3\]"),
        (LongBudgetSetup(steps=0), "`steps` must be >= 1"),
        (LongBudgetSetup(duplicate_batches=0), "`duplicate_batches` must be >= 1"),
        (LongBudgetSetup(checkpoint_every=-1), "`checkpoint_every` must be >= 0, got -1"),
    ],
)
def test_bad_setup_is_an_error_naming_the_field(tmp_path: Path, setup: LongBudgetSetup, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(DemoContext(out_dir=tmp_path), setup)
