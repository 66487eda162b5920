"""Evidence experiment 5's bookkeeping with the teacher's and the students' training replaced by stand-ins (the real
ones are the Margin-MSE demo's `train_teacher`, `rerank_with_teacher`, `train_student` and `evaluate_student`, tested
with it): the teacher stops at the first check where it leads the zero-shot bi-encoder, a stopped teacher training
resumes from its last checkpoint (its curve and seconds too), a teacher not ahead alone is distilled as an ensemble
with the zero-shot bi-encoder if that is ahead and stops the experiment before any distillation otherwise, one record
per (student, method, seed), every method of a seed on the same rows, the summary pairs Margin-MSE with labels only
and pointwise MSE by seed, and a restart skips what is done and reuses the teacher."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import datasets
import pytest
import torch

from hf_margin.data import teacher_scoring
from hf_margin.demo import DemoContext, checkpoints, margin_mse
from hf_margin.demo.evidence import ensemble_teacher
from hf_margin.demo.evidence import margin_mse_teacher as evidence
from hf_margin.demo.evidence.margin_mse_teacher import (
    REGIME_METRICS,
    Instruments,
    StrongTeacherSetup,
    TeacherCheck,
    TeacherNotAheadError,
    run,
)
from hf_margin.demo.margin_mse import LABELS_ONLY, MARGIN_MSE, POINTWISE, STUDENTS
from hf_margin.recipes_cli import build_command, known_recipes, recipes_root

SIX, TWO = STUDENTS
ZERO_SHOT = {"rerank MRR@10": 0.60, "rerank nDCG@10": 0.65}
GAIN = {LABELS_ONLY: 0.0, POINTWISE: -0.05, MARGIN_MSE: 0.03}
SETUP = StrongTeacherSetup(
    seeds=3, train_rows=40, teacher_max_steps=100, teacher_check_every=10, steps=4, batch_size=5, check_queries=3
)
SMALL = replace(SETUP, seeds=2, students=(TWO,))  # the bookkeeping of one student, at the least seeds for a summary


class TeacherModel:
    """The stand-in teacher's network: it knows its step and can be saved."""

    def __init__(self) -> None:
        self.step = 0

    def eval(self) -> TeacherModel:
        return self


class StandIns:
    """The teacher's re-ranking improves by `slope` per step from 0.5 (its ensemble's by `ensemble_gain` more); a
    student's metrics are a fixed function of its method, student and seed. The clock moves 1 s per teacher step
    and at nothing else. A kill (KeyboardInterrupt) can come at the start of teacher step `kill_teacher_at`, after
    the check of step `kill_after_check_at` (before its checkpoint), or in the first `save_pretrained`
    (`kill_at_save`)."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        slope: float = 0.005,
        fail: Any = None,
        kill_teacher_at: int = 0,
        kill_after_check_at: int = 0,
        kill_at_save: bool = False,
        ensemble_gain: float = 0.1,
    ) -> None:
        self.slope, self.fail, self.ensemble_gain = slope, fail, ensemble_gain
        self.kill_teacher_at, self.kill_after_check_at = kill_teacher_at, kill_after_check_at
        self.kill_at_save = kill_at_save
        self.clock = 0.0
        monkeypatch.setattr(evidence, "time", SimpleNamespace(perf_counter=self.now, process_time=self.now))
        self.teacher_steps: list[int] = []
        self.ensemble_reranks: list[tuple[int, str]] = []
        self.ensembled: list[int] = []
        self.ensemble_students: list[bool] = []
        self.teachers_trained = self.teachers_loaded = 0
        self.scored: list[int] = []
        self.students: list[tuple[str, str, int, tuple[str, ...]]] = []
        rows = datasets.Dataset.from_dict(
            {"anchor": [f"term {i}" for i in range(40)], "positive": ["p"] * 40, "negative_1": ["n"] * 40}
        )
        test = SimpleNamespace(zero_shot=dict(ZERO_SHOT), reranking="test")
        check = SimpleNamespace(zero_shot=dict(ZERO_SHOT), reranking="check")
        instruments = Instruments(rows, check, test, zero_shot="zero-shot model")
        monkeypatch.setattr(evidence, "load_instruments", lambda setup: instruments)
        monkeypatch.setattr(evidence, "load_teacher", self.load_teacher)
        monkeypatch.setattr(margin_mse, "train_teacher", self.train_teacher)
        monkeypatch.setattr(margin_mse, "rerank_with_teacher", self.rerank_with_teacher)
        monkeypatch.setattr(margin_mse, "train_student", self.train_student)
        monkeypatch.setattr(margin_mse, "evaluate_student", self.evaluate_student)
        monkeypatch.setattr(teacher_scoring, "score_with_teachers", self.score_with_teachers)
        monkeypatch.setattr(ensemble_teacher, "ensemble_rerank", self.ensemble_rerank)
        monkeypatch.setattr(ensemble_teacher, "with_ensemble_scores", self.with_ensemble_scores)

    def now(self) -> float:
        return self.clock

    def teacher(self) -> Any:
        model = TeacherModel()
        return SimpleNamespace(model=model, tokenizer="tokenizer", save_pretrained=self.save)

    def save(self, folder: str) -> None:
        if self.kill_at_save:
            self.kill_at_save = False
            raise KeyboardInterrupt
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "config.json").write_text("{}")

    def load_teacher(self, folder: Path) -> Any:
        """A saved teacher, or a training checkpoint (which knows its step)."""
        assert (folder / "config.json").is_file() or folder.name.startswith("checkpoint-")
        self.teachers_loaded += 1
        teacher = self.teacher()
        teacher.model.step = int(folder.name.removeprefix("checkpoint-")) if folder.name != "teacher" else 0
        return teacher

    def train_teacher(
        self, rows: Any, setup: Any, seed: int, output_dir: Path, callbacks: Any = (), checkpoint_every: int = 0
    ) -> Any:
        """A transformers training loop in miniature: the callbacks see every step and may stop it; a checkpoint
        (a ``checkpoint-N`` folder with only ``trainer_state.json``) follows the callbacks every `checkpoint_every`
        steps and at the end, and training resumes from the last one (TeacherCheck does not depend on whether the
        step is restored before or after `on_train_begin`)."""
        self.teachers_trained += 1
        teacher = self.teacher()
        args = SimpleNamespace()
        state = SimpleNamespace(global_step=0, max_steps=setup.teacher_steps)
        control = SimpleNamespace(should_training_stop=False)
        for callback in callbacks:
            callback.on_train_begin(args, state, control)
        last = checkpoints.last_checkpoint(output_dir)
        state.global_step = int(last.name.removeprefix("checkpoint-")) if last else 0
        while state.global_step < state.max_steps and not control.should_training_stop:
            state.global_step += 1
            if state.global_step == self.kill_teacher_at:
                raise KeyboardInterrupt
            self.clock += 1.0
            self.teacher_steps.append(state.global_step)
            teacher.model.step = state.global_step
            for callback in callbacks:
                callback.on_step_end(args, state, control, model=teacher)
            if state.global_step == self.kill_after_check_at:
                raise KeyboardInterrupt
            end = state.global_step == state.max_steps or control.should_training_stop
            if checkpoint_every and (state.global_step % checkpoint_every == 0 or end):
                (output_dir / f"checkpoint-{state.global_step}").mkdir(parents=True)
                (output_dir / f"checkpoint-{state.global_step}" / "trainer_state.json").write_text("{}")
        return teacher

    def rerank_with_teacher(self, model: Any, tokenizer: Any, data: str, setup: Any, out: Path) -> Any:
        assert tokenizer == "tokenizer" and data in ("check", "test")
        value = 0.5 + self.slope * model.step
        return {"rerank MRR@10": value, "rerank nDCG@10": value + 0.05, "rerank R@1": 0.0}, 1.0

    def ensemble_rerank(self, teacher: Any, zero_shot: Any, data: str, max_length: int) -> dict[str, float]:
        assert zero_shot == "zero-shot model"
        self.ensemble_reranks.append((teacher.model.step, data))
        value = 0.5 + self.slope * teacher.model.step + self.ensemble_gain
        return {"rerank MRR@10": value, "rerank nDCG@10": value + 0.05, "rerank R@1": 0.0}

    def with_ensemble_scores(self, scored: Any, zero_shot: Any) -> Any:
        assert zero_shot == "zero-shot model"
        self.ensembled.append(len(scored))
        return scored.add_column("ensemble", [True] * len(scored))

    def score_with_teachers(self, rows: Any, teachers: Any, **options: Any) -> Any:
        assert options["query_column"] == "anchor" and options["cache_file"].name == "teacher_scores.json"
        self.scored.append(len(rows))
        return rows.add_column("teacher_scores", [[float(i), 0.0] for i in range(len(rows))])

    def train_student(self, name: str, method: str, rows: Any, tokenizer: Any, setup: Any, out: Path) -> Any:
        if (name, method, setup.seed) == self.fail:
            raise RuntimeError("out of memory")
        assert len(rows) == setup.steps * setup.batch_size and "teacher_scores" in rows.column_names
        self.students.append((name, method, setup.seed, tuple(rows["anchor"])))
        self.ensemble_students.append("ensemble" in rows.column_names)
        return SimpleNamespace(name=name, method=method, seed=setup.seed)

    @staticmethod
    def evaluate_student(trainer: Any, test: Any, setup: Any) -> tuple[dict[str, float], float]:
        assert test.reranking == "test"
        value = 0.55 + 0.01 * trainer.seed + GAIN[trainer.method] * (1.0 if trainer.name == SIX else 0.5)
        metrics = {"rerank MRR@10": value, "rerank nDCG@10": value + 0.05}
        return metrics | {"retrieval MRR@10": value - 0.1, "retrieval nDCG@10": value - 0.05}, 2.0


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


def test_teacher_stops_once_ahead_and_students_are_paired_by_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins = StandIns(monkeypatch)
    rows = run(DemoContext(out_dir=tmp_path), SETUP)
    # MRR@10 0.5 + 0.005 s passes 0.60 after step 20 (nDCG likewise): the checks at 10, 20, 30, then stop.
    regime = json.loads((tmp_path / "regime.json").read_text())
    assert regime["reached"] and regime["at"]["step"] == 30 and [p["step"] for p in regime["curve"]] == [10, 20, 30]
    assert regime["test"]["cross-encoder teacher"]["rerank MRR@10"] == pytest.approx(0.65)
    assert regime["zero_shot_check"] == ZERO_SHOT and (tmp_path / "teacher" / "config.json").is_file()
    assert stand_ins.scored == [40]  # every row scored once

    records = _records(tmp_path)
    assert {(r["student"], r["method"], r["seed"]) for r in records} == {
        (s, m, seed) for s in STUDENTS for m in GAIN for seed in range(3)
    }
    assert all(r["seconds"] >= 0 and r["rerank_seconds"] == 2.0 for r in records)
    for seed in range(3):  # every run of a seed on the same rows in the same order; seeds draw other rows
        seen = {anchors for _, _, s, anchors in stand_ins.students if s == seed}
        assert len(seen) == 1 and len(next(iter(seen))) == 20
    assert len({anchors for *_, anchors in stand_ins.students}) == 3

    summary = json.loads((tmp_path / "summary.json").read_text())
    margin = summary["vs labels only"][SIX][MARGIN_MSE]["rerank MRR@10 minus labels only"]
    assert margin["mean"] == pytest.approx(0.03) and margin["verdict"] == "better" and margin["n"] == 3
    assert summary["vs labels only"][TWO][POINTWISE]["rerank MRR@10 minus labels only"]["verdict"] == "worse"
    versus = summary["vs pointwise MSE"][TWO][MARGIN_MSE]["retrieval nDCG@10 minus pointwise MSE"]
    assert versus["mean"] == pytest.approx(0.04) and versus["verdict"] == "better"
    assert summary["teacher"]["at"]["step"] == 30
    assert (tmp_path / "paired_differences.png").is_file() and (
        tmp_path / "paired_differences_vs_pointwise.png"
    ).is_file()

    assert [(r.method, r.metric) for r in rows[:2]] == [("cross-encoder teacher", m) for m in REGIME_METRICS]
    assert rows[0].note == "step 30" and rows[0].baseline_value == pytest.approx(0.60)
    distilled = rows[2:]
    assert len(distilled) == 2 * 3 * 4 and all("(n=3)" in r.note for r in distilled)
    assert {(r.method, r.baseline) for r in distilled if r.method.startswith(SIX)} == {
        (f"{SIX}: {POINTWISE}", f"{SIX}: {LABELS_ONLY}"),
        (f"{SIX}: {MARGIN_MSE}", f"{SIX}: {LABELS_ONLY}"),
        (f"{SIX}: {MARGIN_MSE}", f"{SIX}: {POINTWISE}"),
    }


def test_a_restart_reuses_the_teacher_and_skips_finished_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = StandIns(monkeypatch, fail=(TWO, MARGIN_MSE, 1))
    with pytest.raises(RuntimeError, match="out of memory"):
        run(DemoContext(out_dir=tmp_path), SMALL)
    finished = {(r["student"], r["method"], r["seed"]) for r in _records(tmp_path)}
    assert len(finished) == 3 + 2 and failing.teachers_trained == 1

    again = StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path), SMALL)
    assert again.teachers_trained == 0 and again.teachers_loaded == 1
    assert [(n, m, s) for n, m, s, _ in again.students] == [(TWO, MARGIN_MSE, 1)]
    assert len(_records(tmp_path)) == 6

    run(DemoContext(out_dir=tmp_path), SMALL)  # nothing left: no scoring, no training
    assert again.scored == [40] and len(again.students) == 1


def test_processes_split_by_only_seeds_share_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path), replace(SMALL, only_seeds=(1,)))  # step 1, then seed 1 only
    assert {r["seed"] for r in _records(tmp_path)} == {1} and first.teachers_trained == 1
    second = StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path), replace(SMALL, only_seeds=(0,)))
    assert second.teachers_trained == 0 and {s for _, _, s, _ in second.students} == {0}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["vs labels only"][TWO][MARGIN_MSE]["rerank MRR@10 minus labels only"]["n"] == 2


@pytest.mark.parametrize(
    "kill",
    [{"kill_teacher_at": 25}, {"kill_after_check_at": 30}],
    ids=["in a step", "between a check and its checkpoint"],
)
def test_a_stopped_teacher_training_resumes_from_its_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill: dict[str, int]
) -> None:
    StandIns(monkeypatch, **kill)  # the last checkpoint is at step 20 either way
    with pytest.raises(KeyboardInterrupt):
        run(DemoContext(out_dir=tmp_path), SMALL)
    assert not (tmp_path / "regime.json").exists() and not (tmp_path / "records.jsonl").exists()

    resumed = StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path), SMALL)
    assert resumed.teacher_steps == list(range(21, 31)), "steps 1-20 are not trained again"
    regime = json.loads((tmp_path / "regime.json").read_text())
    assert [p["step"] for p in regime["curve"]] == [10, 20, 30], "the checks up to the checkpoint are kept, once each"
    assert [p["train_seconds"] for p in regime["curve"]] == [10.0, 20.0, 30.0], "1 s a step, counted once"
    assert regime["at"]["step"] == 30


def test_a_teacher_killed_after_getting_ahead_is_not_trained_further(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    StandIns(monkeypatch, kill_at_save=True)  # ahead at step 30, killed while saving it
    with pytest.raises(KeyboardInterrupt):
        run(DemoContext(out_dir=tmp_path), SMALL)
    assert not (tmp_path / "regime.json").exists()

    resumed = StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path), SMALL)
    regime = json.loads((tmp_path / "regime.json").read_text())
    assert resumed.teachers_trained == 0 and resumed.teacher_steps == [], "the checkpoint at step 30 is the teacher"
    assert regime["at"]["step"] == 30 and [p["step"] for p in regime["curve"]] == [10, 20, 30]
    assert regime["test"]["cross-encoder teacher"]["rerank MRR@10"] == pytest.approx(0.65)


def test_a_teacher_that_never_gets_ahead_stops_before_distilling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins = StandIns(monkeypatch, slope=0.0005)  # 0.5 + 0.0005 * 95 < 0.60
    setup = replace(SMALL, teacher_max_steps=95, ensemble_fallback=False)
    with pytest.raises(TeacherNotAheadError, match=r"within `teacher_max_steps` = 95 \(best at step 95: MRR@10 0.54"):
        run(DemoContext(out_dir=tmp_path), setup)
    regime = json.loads((tmp_path / "regime.json").read_text())
    assert not regime["reached"] and regime["at"] is None
    assert [p["step"] for p in regime["curve"]] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]  # and at the cap
    assert stand_ins.scored == [] and stand_ins.students == [] and not (tmp_path / "records.jsonl").exists()
    assert stand_ins.ensemble_reranks == [] and "ensemble" not in regime
    with pytest.raises(TeacherNotAheadError, match="`ensemble_fallback` is off; no student was distilled"):
        run(DemoContext(out_dir=tmp_path), setup)  # the same budget: the answer is known, no retraining
    assert stand_ins.teachers_trained == 1
    run(DemoContext(out_dir=tmp_path), replace(setup, teacher_max_steps=300))
    assert stand_ins.teachers_trained == 2 and len(_records(tmp_path)) == 6  # a higher cap trains a new teacher


def test_a_teacher_not_ahead_alone_is_distilled_as_an_ensemble_that_is_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins = StandIns(monkeypatch, slope=0.0005, ensemble_gain=0.1)  # the ensemble at step 95: 0.6475 > 0.60
    setup = replace(SMALL, teacher_max_steps=95)
    rows = run(DemoContext(out_dir=tmp_path), setup)
    regime = json.loads((tmp_path / "regime.json").read_text())
    assert not regime["reached"] and regime["ensemble"]["ahead"]
    assert regime["ensemble"]["check"]["rerank MRR@10"] == pytest.approx(0.6475)
    assert stand_ins.ensemble_reranks == [(95, "check"), (95, "test")], "the trained cross-encoder, not a fresh one"
    assert set(regime["test"]) == {"zero-shot bi-encoder", "cross-encoder teacher", evidence.ENSEMBLE}
    assert stand_ins.ensembled == [40] and len(_records(tmp_path)) == 6
    assert stand_ins.ensemble_students == [True] * 6, "every student learns the ensemble's scores"
    assert [(r.method, r.metric) for r in rows[:4]] == [
        (teacher, m) for teacher in ("cross-encoder teacher", evidence.ENSEMBLE) for m in REGIME_METRICS
    ]
    assert rows[2].ours == pytest.approx(0.6475) and rows[2].note == "step 95 (cap; not ahead alone)"

    run(DemoContext(out_dir=tmp_path), setup)  # a restart: the regime is known, nothing is re-ranked or trained
    assert len(stand_ins.ensemble_reranks) == 2 and stand_ins.teachers_trained == 1


def test_an_ensemble_not_ahead_either_stops_before_distilling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_ins = StandIns(monkeypatch, slope=0.0005, ensemble_gain=0.0)
    setup = replace(SMALL, teacher_max_steps=95)
    with pytest.raises(TeacherNotAheadError, match=r"nor did its ensemble with the zero-shot bi-encoder \(MRR@10 0.5"):
        run(DemoContext(out_dir=tmp_path), setup)
    assert not json.loads((tmp_path / "regime.json").read_text())["ensemble"]["ahead"]
    with pytest.raises(TeacherNotAheadError, match="nor did its ensemble"):
        run(DemoContext(out_dir=tmp_path), setup)
    assert stand_ins.ensemble_reranks == [(95, "check")] and stand_ins.scored == [] and stand_ins.students == []


def test_a_cap_reached_without_the_fallback_gets_the_ensemble_of_the_last_checkpoint_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins = StandIns(monkeypatch, slope=0.0004)  # alone 0.54 at step 100; the ensemble 0.64
    with pytest.raises(TeacherNotAheadError, match="`ensemble_fallback` is off"):
        run(DemoContext(out_dir=tmp_path), replace(SMALL, teacher_max_steps=100, ensemble_fallback=False))
    run(DemoContext(out_dir=tmp_path), replace(SMALL, teacher_max_steps=100))
    assert stand_ins.teachers_trained == 1 and stand_ins.ensemble_reranks[0] == (100, "check")
    assert len(_records(tmp_path)) == 6


def test_the_lead_must_exceed_teacher_min_lead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path), replace(SMALL, teacher_min_lead=0.1))
    assert json.loads((tmp_path / "regime.json").read_text())["at"]["step"] == 50  # 0.5 + 0.005 s > 0.70


def test_a_larger_lead_continues_a_copied_teacher_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path / "lead 0"), SMALL)  # ahead at step 30
    (run_dir,) = (tmp_path / "lead 0").glob("teacher_run_*")
    shutil.copytree(run_dir, tmp_path / "lead 0.1" / run_dir.name)
    larger = StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path / "lead 0.1"), replace(SMALL, teacher_min_lead=0.1))
    assert larger.teacher_steps == list(range(31, 51)), "the same trajectory: steps 1-30 are not trained again"
    regime = json.loads((tmp_path / "lead 0.1" / "regime.json").read_text())
    assert regime["at"]["step"] == 50 and [p["step"] for p in regime["curve"]] == [10, 20, 30, 40, 50]


def test_records_of_another_teacher_budget_are_not_mixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path), SMALL)
    with pytest.raises(ValueError, match="holds records distilled from a teacher with another budget"):
        run(DemoContext(out_dir=tmp_path), replace(SMALL, teacher_learning_rate=1e-4))


def test_a_check_does_not_change_the_training_random_state() -> None:
    def rerank(model: Any) -> dict[str, float]:
        torch.rand(5)  # evaluation may draw random numbers (dropout, sampling)
        return {"rerank MRR@10": 0.1, "rerank nDCG@10": 0.1}

    progress = SimpleNamespace(update=lambda n: None, write=lambda line: None)
    check = TeacherCheck(rerank, ZERO_SHOT, every=1, min_lead=0.0, progress=progress)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    state = SimpleNamespace(global_step=1, max_steps=10)
    check.on_step_end(None, state, SimpleNamespace(should_training_stop=False), model=None)
    torch.testing.assert_close(torch.rand(3), expected)
    assert check.curve[0]["step"] == 1 and check.reached is None


def test_distillation_setup_of_a_seed() -> None:
    demo = SETUP.distillation(2)
    assert (demo.seed, demo.steps, demo.batch_size, demo.teacher_steps, demo.rerank_queries) == (2, 4, 5, 100, 0)
    assert demo.rerank_depth == SETUP.rerank_depth and demo.students == SETUP.students


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"students": ("12-layer",)}, r"unknown `students` or `methods` \['12-layer'\]"),
        ({"methods": ("RankNet",)}, r"unknown `students` or `methods` \['RankNet'\]"),
        ({"students": ()}, "`students` must name at least one student"),
        ({"seeds": 0}, "`seeds` must be >= 1, got 0"),
        ({"only_seeds": (0, 3)}, r"`only_seeds` must be in \[0, 3\) \(`seeds`\), got \[0, 3\]"),
        ({"teacher_check_every": 0}, "`teacher_check_every` must be >= 1"),
        ({"teacher_max_steps": 5}, r"`teacher_max_steps` \(5\) must be >= `teacher_check_every` \(10\)"),
        ({"steps": 9}, r"`steps` x `batch_size` \(45\) must be at most `train_rows` \(40\)"),
    ],
)
def test_bad_setup_is_an_error_naming_the_field(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(DemoContext(out_dir=tmp_path), replace(SETUP, **changes))


def test_the_recipe_is_found_by_hf_margin_train(tmp_path: Path) -> None:
    assert "evidence/margin_mse_teacher" in known_recipes(recipes_root())
    command = build_command("evidence/margin_mse_teacher", overrides=["--seeds", "5", "--out_dir", str(tmp_path / "o")])
    assert command[1].endswith("recipes/evidence/margin_mse_teacher/distil_strong_teacher.py")
    assert command[2].endswith("recipes/evidence/margin_mse_teacher/config.yaml") and command[-4:-2] == ["--seeds", "5"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"check_queries": 3, "rerank_queries": 4}, r"`check_queries` \+ `rerank_queries` must be at most the 6"),
        ({"check_queries": 2}, r"the 2 `check_queries` retrieve among 2 descriptions .* fewer than"),
        ({"check_queries": 4, "rerank_queries": 2}, r"the 2 `rerank_queries` retrieve among 2 descriptions"),
    ],
)
def test_too_few_held_out_terms_is_an_error_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], message: str
) -> None:
    from hf_margin.demo import icd_triples
    from hf_margin.demo.data import pretrained, retrieval

    terms = [f"term {i}" for i in range(6)]
    test = retrieval.RetrievalSet(terms, [{f"code {i}"} for i in range(6)], [f"code {i}" for i in range(9)])
    data = retrieval.ICDRetrieval([("a", "b")], test, ["b"])
    monkeypatch.setattr(retrieval, "icd10_retrieval", lambda seed: data)
    monkeypatch.setattr(pretrained, "minilm_path", lambda: "minilm")
    monkeypatch.setattr("sentence_transformers.SentenceTransformer", lambda path, device: SimpleNamespace(eval=dict))
    rows = datasets.Dataset.from_dict(
        {"anchor": ["a"], "positive": ["b"], **{f"negative_{i}": ["c"] for i in (1, 2, 3)}}
    )
    monkeypatch.setattr(icd_triples, "mined_icd_rows", lambda *args: rows)
    monkeypatch.setattr(margin_mse, "held_out", lambda *args: "queries")
    with pytest.raises(ValueError, match=message):
        evidence.load_instruments(replace(SETUP, **({"rerank_queries": 3, "rerank_depth": 3} | changes)))
