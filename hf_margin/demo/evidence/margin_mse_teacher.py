"""Evidence 5: Margin-MSE distillation with a teacher that is stronger than the student, paired by seed.

Margin-MSE (Hofstaetter et al., "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge
Distillation", arXiv:2010.02666) trains a fast student on a slow teacher's score margins,
``(s(q, p+) - s(q, p-) - (t(q, p+) - t(q, p-)))^2``. Its claim needs a teacher that ranks better than the student;
the Margin-MSE demo's teachers were weaker than the zero-shot bi-encoder, so its students could not gain.

Setting. ICD-10-CM inclusion term -> code description retrieval, split by code (`icd10_retrieval`, 20% of the codes
held out; the split is fixed by `split_seed`). Training rows (term, description, hard negatives mined by the
zero-shot all-MiniLM-L6-v2 from the rank window `rank_window`) come from the training codes only. The held-out
codes' terms are split into disjoint check queries (for step 1) and test queries (every reported number).

1. The regime: all-MiniLM-L6-v2 with a new one-output head is fine-tuned as a cross-encoder (the demo's
   `train_teacher`), and every `teacher_check_every` steps it re-ranks the zero-shot bi-encoder's top
   `rerank_depth` candidates of the check queries; training stops at the first check where its MRR@10 and nDCG@10
   both lead the zero-shot bi-encoder's by more than `teacher_min_lead`, or at `teacher_max_steps`. The steps, the
   training seconds and the curve are written to ``regime.json`` and the teacher is kept in ``teacher/``; a teacher
   that never gets ahead goes to step 1b. The training is checkpointed at every check (``teacher_run_<budget>/``): a
   stopped run resumes from its last check.
1b. With `ensemble_fallback` (the default), the cross-encoder at its cap and the zero-shot bi-encoder as one ensemble
   teacher (`hf_margin.demo.evidence.ensemble_teacher`) re-rank the check queries; if the ensemble is ahead, step 2
   distils its scores, and otherwise (or with the fallback off) the experiment stops with `TeacherNotAheadError`.
2. The teacher scores every training row once. Per seed, a seeded draw of `steps x batch_size` rows in a seeded
   order is shared by every (student, method) of the seed; each student starts from the same pretrained weights
   (all 6 layers, or the first 2) and trains for the same steps with labels only (in-batch softmax with the hard
   negatives), pointwise MSE to the teacher's scores, or Margin-MSE (the demo's `train_student`). Each finished
   (student, method, seed) run is appended to ``records.jsonl`` (a restart skips it); ``summary.json`` (means, 95%
   intervals, paired differences to labels only and of Margin-MSE to pointwise MSE, with verdicts) is rewritten
   after each, and the paired differences are drawn to ``paired_differences*.png`` at the end.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo.checkpoints import last_checkpoint
from hf_margin.demo.evidence.records import (
    append_record,
    paired_row,
    plot_paired_differences,
    read_records,
    save_summary,
    seeds_to_run,
    setup_json,
)
from hf_margin.demo.evidence.records import summarise as summarise_records
from hf_margin.demo.margin_mse import LABELS_ONLY, MARGIN_MSE, METHODS, POINTWISE, STUDENTS, DistillationSetup

ENTRY = "evidence/margin_mse_teacher"
METRICS = ("rerank MRR@10", "rerank nDCG@10", "retrieval MRR@10", "retrieval nDCG@10")
REGIME_METRICS = ("rerank MRR@10", "rerank nDCG@10")
ZERO_SHOT, TEACHER = "zero-shot bi-encoder", "cross-encoder teacher"
ENSEMBLE = "ensemble teacher (cross-encoder + zero-shot bi-encoder)"


@dataclass(frozen=True)
class StrongTeacherSetup:
    """Budget and protocol of evidence experiment 5.

    Args:
        students: which of the demo's STUDENTS to distil into ("MiniLM bi-encoder": 6 layers, "2-layer bi-encoder").
        methods: which of the demo's METHODS to train; "labels only" and "pointwise MSE", the baselines, are always
            trained.
        seeds: seeds (each: a draw of training rows and their order, shared by every student and method).
        only_seeds: distil only these of the seeds (empty: all), to share one out_dir between processes once step 1
            is done (start the second process after ``regime.json`` exists); the summary covers every record.
        train_rows: rows mined from the training codes (the teacher trains on all of them, cycling; each seed's
            students on `steps x batch_size` of them).
        rank_window: the zero-shot miner's [first, last) ranks the hard negatives are drawn from.
        num_negatives: hard negatives per row.
        teacher_max_steps: the cap on the teacher's steps (its learning-rate schedule spans the cap).
        teacher_check_every: steps between two re-ranking checks of the teacher.
        teacher_min_lead: how far the teacher's MRR@10 and nDCG@10 on the check queries must exceed the zero-shot
            bi-encoder's for it to count as stronger.
        teacher_batch_size, teacher_learning_rate, teacher_in_batch_negatives: the teacher's training (as the demo's
            `DistillationSetup`).
        steps, batch_size, learning_rate: every student's budget (AdamW, linear decay after 10% warm-up).
        check_queries: held-out terms the teacher is checked on (step 1 only).
        rerank_queries: held-out terms every reported number is measured on (disjoint from the check queries).
        rerank_depth: the zero-shot bi-encoder's top candidates re-ranked per query.
        full_corpus: retrieve and take candidates among every ICD description (else the queries' codes' only).
        max_length: token budget of a text or a query + passage pair.
        split_seed: seed of the held-out codes, the check / test queries, the mining and the teacher.
        ensemble_fallback: if the cross-encoder is not ahead at `teacher_max_steps`, try the ensemble of it and the
            zero-shot bi-encoder (`hf_margin.demo.evidence.ensemble_teacher`) on the check queries, and distil from
            the ensemble if it is ahead (the Margin-MSE paper's teachers include an ensemble).
    """

    students: tuple[str, ...] = tuple(STUDENTS)
    methods: tuple[str, ...] = METHODS
    seeds: int = 3
    only_seeds: tuple[int, ...] = ()
    train_rows: int = 8000
    rank_window: tuple[int, int] = (0, 20)
    num_negatives: int = 3
    teacher_max_steps: int = 2000
    teacher_check_every: int = 100
    teacher_min_lead: float = 0.0
    teacher_batch_size: int = 16
    teacher_learning_rate: float = 5e-5
    teacher_in_batch_negatives: int = 1
    steps: int = 150
    batch_size: int = 32
    learning_rate: float = 5e-5
    check_queries: int = 200
    rerank_queries: int = 500
    rerank_depth: int = 20
    full_corpus: bool = False
    max_length: int = 64
    split_seed: int = 0
    ensemble_fallback: bool = True

    def distillation(self, seed: int) -> DistillationSetup:
        """The Margin-MSE demo's setup of one seed's students (and of the teacher, with `teacher_max_steps`)."""
        return DistillationSetup(
            students=self.students,
            methods=self.methods,
            teacher_steps=self.teacher_max_steps,
            teacher_batch_size=self.teacher_batch_size,
            teacher_learning_rate=self.teacher_learning_rate,
            teacher_in_batch_negatives=self.teacher_in_batch_negatives,
            steps=self.steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            num_negatives=self.num_negatives,
            rerank_queries=0,
            rerank_depth=self.rerank_depth,
            full_corpus=self.full_corpus,
            max_length=self.max_length,
            seed=seed,
        )

    def teacher_budget(self) -> dict[str, Any]:
        """What the teacher depends on (a saved teacher is reused only for the same budget)."""
        fields = asdict(self)
        names = {"train_rows", "rank_window", "num_negatives", "check_queries", "rerank_depth", "full_corpus"}
        names |= {"max_length", "split_seed"}
        return {k: v for k, v in fields.items() if k.startswith("teacher_") or k in names}


class TeacherNotAheadError(RuntimeError):
    """The teacher did not re-rank the check queries better than the zero-shot bi-encoder within its step cap."""


@dataclass
class Instruments:
    """What step 1 and step 2 work with (built once by `load_instruments`).

    Attributes:
        rows: the mined training rows (anchor, positive, negative_1..N).
        check: the check queries' re-ranking data (`hf_margin.demo.margin_mse.HeldOut`).
        test: the test queries' re-ranking and retrieval data (`HeldOut`).
        zero_shot: the zero-shot bi-encoder (a `SentenceTransformer`: the miner, and the ensemble's second member).
    """

    rows: Any
    check: Any
    test: Any
    zero_shot: Any = None


def load_instruments(setup: StrongTeacherSetup) -> Instruments:
    """Split ICD-10-CM by code, mine the training rows with the zero-shot bi-encoder, and build the check and test
    queries' candidates (the zero-shot bi-encoder's top `rerank_depth`)."""
    from sentence_transformers import SentenceTransformer

    from hf_margin.demo.data.pretrained import minilm_path
    from hf_margin.demo.data.retrieval import RetrievalSet, icd10_retrieval
    from hf_margin.demo.icd_triples import MiningSetup, mined_icd_rows
    from hf_margin.demo.margin_mse import held_out

    data = icd10_retrieval(seed=setup.split_seed)
    needed = setup.check_queries + setup.rerank_queries
    if needed > len(data.test.queries):
        raise ValueError(
            f"`check_queries` + `rerank_queries` must be at most the {len(data.test.queries)} held-out terms, "
            f"got {setup.check_queries} + {setup.rerank_queries}"
        )
    zero_shot = SentenceTransformer(minilm_path(), device="cpu").eval()
    mining = MiningSetup(setup.train_rows, setup.num_negatives, setup.rank_window, seed=setup.split_seed)
    passages = ["positive", *(f"negative_{i}" for i in range(1, setup.num_negatives + 1))]
    rows = mined_icd_rows(mining, data.train_pairs, data.train_corpus, zero_shot).select_columns(["anchor", *passages])
    order = random.Random(setup.split_seed).sample(range(len(data.test.queries)), needed)
    demo_setup = setup.distillation(setup.split_seed)

    def queries(picks: list[int], name: str) -> Any:
        subset = RetrievalSet(
            [data.test.queries[i] for i in picks], [data.test.relevant[i] for i in picks], data.test.corpus
        )
        corpus = len(subset.corpus) if setup.full_corpus else len(set().union(*subset.relevant))
        if corpus < setup.rerank_depth:
            raise ValueError(
                f"the {len(picks)} `{name}` retrieve among {corpus} descriptions (their codes' own), fewer than "
                f"`rerank_depth` = {setup.rerank_depth}; use more `{name}`, a smaller `rerank_depth` or `full_corpus`"
            )
        return held_out(replace(data, test=subset), zero_shot, demo_setup)

    check = queries(sorted(order[: setup.check_queries]), "check_queries")
    return Instruments(rows, check, queries(sorted(order[setup.check_queries :]), "rerank_queries"), zero_shot)


@contextmanager
def _random_state_kept() -> Iterator[None]:
    """Restore Python's, numpy's and torch's random state after the block (a check must not change training)."""
    python, numpy = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(python)
    np.random.set_state(numpy)


class TeacherCheck(TrainerCallback):
    """Every `every` steps (and at the last), re-rank the check queries with the teacher being trained; stop
    training at the first check where it leads `zero_shot` by more than `min_lead` on every `REGIME_METRICS`.

    Args:
        rerank: the teacher's re-ranking metrics of the check queries (called with the trained model).
        zero_shot: the zero-shot bi-encoder's metrics on the same queries.
        every: steps between two checks.
        min_lead: the lead needed on each metric.
        progress: a progress bar over the steps (each check is written with it).
        curve_path: where the curve is written after every check (read back by `resumed_curve`).
        curve: the checks of an interrupted training this one resumes (its seconds continue from the last).

    Attributes:
        curve: one point per check (step, training seconds and CPU seconds without the checks, the metrics).
        reached: the first point where the teacher was ahead (None before).
    """

    def __init__(
        self,
        rerank: Callable[[Any], dict[str, float]],
        zero_shot: dict[str, float],
        every: int,
        min_lead: float,
        progress: Any,
        curve_path: Path | None = None,
        curve: Sequence[dict[str, float]] = (),
    ) -> None:
        self.rerank, self.zero_shot, self.every, self.min_lead, self.progress = (
            rerank,
            zero_shot,
            every,
            min_lead,
            progress,
        )
        self.curve_path = curve_path
        self.curve: list[dict[str, float]] = list(curve)
        self.reached: dict[str, float] | None = None
        self._start = (time.perf_counter(), time.process_time())
        self._checking = (0.0, 0.0)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        done = self.curve[-1] if self.curve else {"step": 0, "train_seconds": 0.0, "train_cpu_seconds": 0.0}
        self.progress.update(int(done["step"]))
        self._start = (
            time.perf_counter() - done["train_seconds"],
            time.process_time() - done["train_cpu_seconds"],
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress.update(1)
        if state.global_step % self.every and state.global_step < state.max_steps:
            return
        wall, cpu = time.perf_counter(), time.process_time()
        with _random_state_kept():
            metrics = self.rerank(kwargs["model"])
        point = {
            "step": state.global_step,
            "train_seconds": wall - self._start[0] - self._checking[0],
            "train_cpu_seconds": cpu - self._start[1] - self._checking[1],
            **{name: metrics[name] for name in REGIME_METRICS},
        }
        self._checking = (
            self._checking[0] + time.perf_counter() - wall,
            self._checking[1] + time.process_time() - cpu,
        )
        self.curve.append(point)
        if self.curve_path is not None:
            self.curve_path.parent.mkdir(parents=True, exist_ok=True)
            self.curve_path.write_text(json.dumps(self.curve, indent=2), encoding="utf-8")
        scores = ", ".join(
            f"{name} {point[name]:.3f} (zero-shot {self.zero_shot[name]:.3f})" for name in REGIME_METRICS
        )
        self.progress.write(f"teacher step {point['step']} ({point['train_seconds']:.0f} s training): {scores}")
        if _ahead(point, self.zero_shot, self.min_lead):
            self.reached = point
            control.should_training_stop = True


def teacher_in_regime(context: DemoContext, setup: StrongTeacherSetup, instruments: Instruments) -> Any:
    """Step 1: the cross-encoder teacher trained until it re-ranks the check queries better than the zero-shot
    bi-encoder (a `sentence_transformers.CrossEncoder`); its record is ``regime.json``, the model ``teacher/``.
    A teacher saved by an earlier run with the same budget is loaded instead; one that never got ahead goes to step
    1b (`_ensemble_fallback`) without retraining. A training stopped before its end resumes from its last check."""
    from hf_margin.demo import margin_mse

    regime_path, folder = context.out_dir / "regime.json", context.out_dir / "teacher"
    run_dir = _run_dir(context, setup)
    budget = setup.teacher_budget()
    if regime_path.is_file():
        saved = json.loads(regime_path.read_text(encoding="utf-8"))
        if saved["budget"] == json.loads(json.dumps(budget)):
            if not saved["reached"]:
                return _ensemble_fallback(context, setup, instruments, saved, lambda: _last_checkpoint(run_dir))
            return load_teacher(folder)
        if read_records(context.out_dir / "records.jsonl"):
            raise ValueError(
                f"{context.out_dir} holds records distilled from a teacher with another budget ({saved['budget']}); "
                "use a new `--out_dir` for this budget"
            )
    demo_setup = setup.distillation(setup.split_seed)
    zero_shot = {name: instruments.check.zero_shot[name] for name in REGIME_METRICS}

    def rerank(teacher: Any) -> dict[str, float]:
        return margin_mse.rerank_with_teacher(
            teacher.model, teacher.tokenizer, instruments.check.reranking, demo_setup, context.out_dir
        )[0]

    bar = context.progress(total=setup.teacher_max_steps, desc="evidence: Margin-MSE teacher", unit="step")
    curve = resumed_curve(run_dir)
    check = TeacherCheck(
        rerank, zero_shot, setup.teacher_check_every, setup.teacher_min_lead, bar, run_dir / "curve.json", curve
    )
    if curve and _ahead(curve[-1], zero_shot, setup.teacher_min_lead):
        # stopped after getting ahead but before regime.json was written: that check's checkpoint is the teacher
        check.reached, teacher = curve[-1], _last_checkpoint(run_dir)
    else:
        teacher = margin_mse.train_teacher(
            instruments.rows,
            demo_setup,
            setup.split_seed,
            run_dir,
            callbacks=[check],
            checkpoint_every=setup.teacher_check_every,
        )
    bar.close()
    regime: dict[str, Any] = {"budget": budget, "reached": check.reached is not None, "zero_shot_check": zero_shot}
    regime |= {"at": check.reached, "curve": check.curve}
    if check.reached is None:
        return _ensemble_fallback(context, setup, instruments, regime, lambda: teacher)
    teacher.save_pretrained(str(folder))
    regime["test"] = _test_scores(context, setup, instruments, teacher)
    regime_path.write_text(json.dumps(regime, indent=2), encoding="utf-8")
    return teacher


def _ahead(metrics: dict[str, float], zero_shot: dict[str, float], min_lead: float) -> bool:
    """Whether `metrics` lead the zero-shot bi-encoder's by more than `min_lead` on every `REGIME_METRICS`."""
    return all(metrics[name] > zero_shot[name] + min_lead for name in REGIME_METRICS)


def _test_scores(context: DemoContext, setup: StrongTeacherSetup, instruments: Instruments, teacher: Any) -> dict:
    """The zero-shot bi-encoder's and the cross-encoder teacher's re-ranking of the test queries."""
    return {
        ZERO_SHOT: {name: instruments.test.zero_shot[name] for name in REGIME_METRICS},
        TEACHER: _teacher_on(teacher, instruments.test, setup.distillation(setup.split_seed), context.out_dir),
    }


def _ensemble_fallback(
    context: DemoContext,
    setup: StrongTeacherSetup,
    instruments: Instruments,
    regime: dict[str, Any],
    cross_encoder: Callable[[], Any],
) -> Any:
    """Step 1b, for a cross-encoder that was not ahead at its cap: the ensemble of it and the zero-shot bi-encoder
    re-ranks the check queries (once; recorded under "ensemble" in ``regime.json``). Ahead, the cross-encoder is kept
    in ``teacher/`` and returned (step 2 then distils the ensemble's scores); not ahead, or with `ensemble_fallback`
    off, `TeacherNotAheadError`."""
    from hf_margin.demo.evidence.ensemble_teacher import ensemble_rerank

    regime_path, folder = context.out_dir / "regime.json", context.out_dir / "teacher"
    if "ensemble" not in regime and setup.ensemble_fallback:
        teacher = cross_encoder()
        check = ensemble_rerank(teacher, instruments.zero_shot, instruments.check.reranking, setup.max_length)
        ahead = _ahead(check, regime["zero_shot_check"], setup.teacher_min_lead)
        regime["ensemble"] = {"check": {m: check[m] for m in REGIME_METRICS}, "ahead": ahead}
        if ahead:
            teacher.save_pretrained(str(folder))
            test = ensemble_rerank(teacher, instruments.zero_shot, instruments.test.reranking, setup.max_length)
            regime["test"] = _test_scores(context, setup, instruments, teacher)
            regime["test"][ENSEMBLE] = {name: test[name] for name in REGIME_METRICS}
    regime_path.write_text(json.dumps(regime, indent=2), encoding="utf-8")
    if not (setup.ensemble_fallback and regime.get("ensemble", {}).get("ahead")):
        raise TeacherNotAheadError(_not_ahead_message(regime, setup))
    return load_teacher(folder)


def _run_dir(context: DemoContext, setup: StrongTeacherSetup) -> Path:
    """Where the teacher's training keeps its checkpoints and its curve: one folder per training trajectory, i.e. per
    budget less `teacher_min_lead`, which only decides where the training stops (so a copy of the folder lets a run
    that asks for a larger lead continue the same training instead of repeating it)."""
    trajectory = {k: v for k, v in setup.teacher_budget().items() if k != "teacher_min_lead"}
    return context.out_dir / f"teacher_run_{_digest(trajectory)}"


def _last_checkpoint(run_dir: Path) -> Any:
    """The cross-encoder of the last complete checkpoint of the teacher's training (a `CrossEncoder`)."""
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"no checkpoint of the teacher's training in {run_dir}")
    return load_teacher(checkpoint)


def resumed_curve(run_dir: Path) -> list[dict[str, float]]:
    """The checks an interrupted teacher training in `run_dir` made up to its last complete checkpoint (the steps
    after it are trained and checked again); [] when there is none."""
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is None or not (run_dir / "curve.json").is_file():
        return []
    step = int(checkpoint.name.removeprefix("checkpoint-"))
    curve = json.loads((run_dir / "curve.json").read_text(encoding="utf-8"))
    return [point for point in curve if point["step"] <= step]


def _budget_digest(setup: StrongTeacherSetup) -> str:
    """A short name for the teacher's budget (its training rows' fingerprint)."""
    return _digest(setup.teacher_budget())


def _digest(fields: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(fields).encode("utf-8")).hexdigest()[:16]


def load_teacher(folder: Path) -> Any:
    """The teacher saved by step 1 (a `sentence_transformers.CrossEncoder`)."""
    from sentence_transformers.cross_encoder import CrossEncoder

    return CrossEncoder(str(folder), device="cpu")


def _teacher_on(teacher: Any, held_out: Any, demo_setup: DistillationSetup, out_dir: Path) -> dict[str, float]:
    from hf_margin.demo import margin_mse

    metrics, seconds = margin_mse.rerank_with_teacher(
        teacher.model, teacher.tokenizer, held_out.reranking, demo_setup, out_dir
    )
    return {name: metrics[name] for name in REGIME_METRICS} | {"rerank_seconds": seconds}


def _not_ahead_message(regime: dict[str, Any], setup: StrongTeacherSetup) -> str:
    best = max(regime["curve"], key=lambda p: p["rerank MRR@10"])
    zero_shot = regime["zero_shot_check"]
    return (
        f"the cross-encoder teacher did not re-rank the {setup.check_queries} check queries better than the zero-shot "
        f"bi-encoder within `teacher_max_steps` = {setup.teacher_max_steps} (best at step {best['step']}: MRR@10 "
        f"{best['rerank MRR@10']:.3f} and nDCG@10 {best['rerank nDCG@10']:.3f}, against "
        f"{zero_shot['rerank MRR@10']:.3f} and {zero_shot['rerank nDCG@10']:.3f} + `teacher_min_lead` "
        f"{setup.teacher_min_lead}){_ensemble_note(regime)}; no student was distilled. The curve is in "
        "regime.json; raise `teacher_max_steps` or change the teacher's budget (a new budget trains a new teacher)."
    )


def _ensemble_note(regime: dict[str, Any]) -> str:
    if "ensemble" not in regime:
        return ", and `ensemble_fallback` is off"
    check = regime["ensemble"]["check"]
    return (
        f", nor did its ensemble with the zero-shot bi-encoder (MRR@10 {check['rerank MRR@10']:.3f}, nDCG@10 "
        f"{check['rerank nDCG@10']:.3f})"
    )


def _check(setup: StrongTeacherSetup) -> None:
    unknown = [s for s in setup.students if s not in STUDENTS] + [m for m in setup.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown `students` or `methods` {unknown}; known: {', '.join((*STUDENTS, *METHODS))}")
    if not setup.students:
        raise ValueError("`students` must name at least one student")
    counts = {
        "seeds": setup.seeds,
        "teacher_check_every": setup.teacher_check_every,
        "steps": setup.steps,
        "batch_size": setup.batch_size,
        "check_queries": setup.check_queries,
        "rerank_queries": setup.rerank_queries,
    }
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"`{name}` must be >= 1, got {value}")
    if setup.teacher_max_steps < setup.teacher_check_every:
        raise ValueError(
            f"`teacher_max_steps` ({setup.teacher_max_steps}) must be >= `teacher_check_every` "
            f"({setup.teacher_check_every})"
        )
    if setup.steps * setup.batch_size > setup.train_rows:
        raise ValueError(
            f"`steps` x `batch_size` ({setup.steps * setup.batch_size}) must be at most `train_rows` "
            f"({setup.train_rows})"
        )


def run(context: DemoContext, setup: StrongTeacherSetup | None = None) -> list[DemoRow]:
    """Step 1 (the teacher, once), then every missing (student, method, seed) record, each appended to
    records.jsonl; return the table rows."""
    setup = setup or StrongTeacherSetup()
    _check(setup)
    seeds = seeds_to_run(setup.seeds, setup.only_seeds)
    instruments = load_instruments(setup)
    teacher = teacher_in_regime(context, setup, instruments)
    records_path = context.out_dir / "records.jsonl"
    done = {(r["student"], r["method"], r["seed"]) for r in read_records(records_path)}
    methods = [m for m in METHODS if m in setup.methods or m in (LABELS_ONLY, POINTWISE)]
    planned = [(seed, s, m) for seed in seeds for s in STUDENTS if s in setup.students for m in methods]
    runs = [(seed, s, m) for seed, s, m in planned if (s, m, seed) not in done]
    if runs:
        _distil(context, setup, instruments, teacher, runs)
    _write_summary(context, setup)
    records = read_records(records_path)
    summary = summarise(records)
    title = f"Margin-MSE with a stronger teacher ({setup.seeds} seeds, 95% CI)"
    for suffix, against in (("", "vs labels only"), ("_vs_pointwise", "vs pointwise MSE")):
        path = context.out_dir / f"paired_differences{suffix}.png"
        plot_paired_differences(summary[against], METRICS, path, xlabel="student", title=f"{title}: {against}")
    regime = json.loads((context.out_dir / "regime.json").read_text(encoding="utf-8"))
    return rows_from_records(records, regime)


def _distil(
    context: DemoContext,
    setup: StrongTeacherSetup,
    instruments: Instruments,
    teacher: Any,
    runs: list[tuple[int, str, str]],
) -> None:
    """Step 2: the teacher scores every training row once (cached in the output folder; the ensemble teacher of step
    1b adds the bi-encoder's scores), then each (seed, student, method) of `runs` trains on its seed's rows and its
    record is appended."""
    from hf_margin.data.teacher_scoring import score_with_teachers
    from hf_margin.demo import margin_mse

    # an in-memory dataset's fingerprint is random; the scores' cache checks it, so name it after what it holds
    digest = _budget_digest(setup)
    rows = instruments.rows.select(range(len(instruments.rows)), new_fingerprint=f"teacher_scores_{digest}")
    scored = score_with_teachers(
        rows,
        [(teacher.model.eval(), teacher.tokenizer)],
        query_column="anchor",
        max_length=setup.max_length,
        cache_file=context.out_dir / "teacher_scores.json",
        progress=False,
    )
    if not json.loads((context.out_dir / "regime.json").read_text(encoding="utf-8"))["reached"]:
        from hf_margin.demo.evidence.ensemble_teacher import with_ensemble_scores

        scored = with_ensemble_scores(scored, instruments.zero_shot)
    records_path = context.out_dir / "records.jsonl"
    bar = context.progress(total=len(runs), desc="evidence: Margin-MSE students", unit="run")
    for seed, name, method in runs:
        demo_setup = setup.distillation(seed)
        seed_rows = scored.shuffle(seed=seed).select(range(setup.steps * setup.batch_size))
        wall, cpu = time.perf_counter(), time.process_time()
        folder = context.out_dir / "runs" / f"{name}_{method}_{seed}".replace(" ", "_")
        trainer = margin_mse.train_student(name, method, seed_rows, teacher.tokenizer, demo_setup, folder)
        cost = {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu}
        metrics, rerank_seconds = margin_mse.evaluate_student(trainer, instruments.test, demo_setup)
        record = {"student": name, "method": method, "seed": seed, **metrics, **cost, "rerank_seconds": rerank_seconds}
        append_record(records_path, record)
        _write_summary(context, setup)
        bar.update()
    bar.close()


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per student and method: each metric's mean with its 95% interval over seeds, and paired differences to labels
    only ("vs labels only": pointwise MSE and Margin-MSE) and of Margin-MSE to pointwise MSE ("vs pointwise MSE")."""
    options: dict[str, Any] = {"setting": "student", "method": "method", "metrics": METRICS, "order": METHODS}
    return {
        "vs labels only": summarise_records(
            records, baseline_of=lambda m: None if m == LABELS_ONLY else LABELS_ONLY, **options
        ),
        "vs pointwise MSE": summarise_records(
            records, baseline_of=lambda m: POINTWISE if m == MARGIN_MSE else None, **options
        ),
    }


def _write_summary(context: DemoContext, setup: StrongTeacherSetup) -> None:
    regime = json.loads((context.out_dir / "regime.json").read_text(encoding="utf-8"))
    summary = {
        "setup": setup_json(setup),
        "teacher": regime,
        **summarise(read_records(context.out_dir / "records.jsonl")),
    }
    save_summary(context.out_dir, summary)


def rows_from_records(records: list[dict[str, Any]], regime: dict[str, Any]) -> list[DemoRow]:
    """The teacher (and the ensemble teacher, if step 1b ran) against the zero-shot bi-encoder on the test queries
    (its seconds: the cross-encoder's training), then
    per student: pointwise MSE and Margin-MSE against labels only, Margin-MSE against pointwise MSE (means over the
    seeds both have; the note gives the paired difference with its 95% interval and the seed count)."""
    dataset = "ICD-10-CM held-out codes"
    test = regime["test"]
    trained = regime["at"] or regime["curve"][-1]
    teachers = [TEACHER] if regime["reached"] else [TEACHER, ENSEMBLE]
    rows = [
        DemoRow(
            ENTRY,
            teacher,
            ZERO_SHOT,
            m,
            test[teacher][m],
            test[ZERO_SHOT][m],
            trained["train_seconds"],
            dataset,
            f"step {trained['step']}" + ("" if regime["reached"] else " (cap; not ahead alone)"),
        )
        for teacher in teachers
        for m in REGIME_METRICS
    ]
    by_key = {(r["student"], r["method"], r["seed"]): r for r in records}
    pairs = [(POINTWISE, LABELS_ONLY), (MARGIN_MSE, LABELS_ONLY), (MARGIN_MSE, POINTWISE)]
    for name in STUDENTS:
        for method, baseline in pairs:
            for metric in METRICS:
                row = paired_row(
                    by_key,
                    (name, method),
                    (name, baseline),
                    metric,
                    entry=ENTRY,
                    names=(f"{name}: {method}", f"{name}: {baseline}", metric),
                    dataset=dataset,
                )
                rows += [row] if row else []
    return rows
