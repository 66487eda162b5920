"""Evidence 3: MarginEmbeddingLoss at a longer budget against MNRL with the same mined hard negatives, paired by seed.

Setting. The embedding demo (`hf_margin.demo.embedding`) fine-tunes all-MiniLM-L6-v2 for ICD-10-CM inclusion term ->
code description retrieval for 150 steps, and there every part of MarginEmbeddingLoss tied
MultipleNegativesRankingLoss (MNRL) with hard negatives. Here the same pipeline runs for 1,000 steps of 64 rows
(anchor, positive, 3 mined hard negatives) with the GradCache variants of both losses (`mini_batch_size`), and:

- the focal weight's step size is compensated (``focal_normalize``: weights of mean 1 in the batch); at gamma 2 the
  logged mean weight was 0.10-0.16, so the unnormalised focal loss trains at about an eighth of MNRL's step;
- the data has false negatives for LG-ANNA's filter to drop: the corpus the negatives are mined from keeps every
  ICD-10-CM description near-identical to a training code's ("Acidosis, unspecified" / "Other acidosis" / "Acidosis":
  the same `meaning_key`; ``near_duplicates``), and the negatives come from the top of the zero-shot ranking (ranks
  0-30) instead of KaLM's window 10-50, which skips the top precisely because near-duplicates sit there; their share
  among each query's negatives is measured per seed (`duplicate_shares`).

The parts (KaLM-Embedding-V2, arXiv:2506.20923: focal weight and hard-negative mixing; LG-ANNA-Embedding,
arXiv:2506.07438: false-negative filter and soft labels) are switched on one at a time and all together. Every
method is evaluated on the held-out ICD codes (R@1, nDCG@10 against every description) and on chatterbot-corpus
question -> answer retrieval, which is never trained on.

Per seed, the code split, the mined rows, the initialisation and the data order are drawn from the seed and shared
by every method; the zero-shot model is scored per seed as the reference MNRL must move. Each finished (method,
seed) run is appended at once to ``records.jsonl``; ``summary.json`` (means, 95% intervals, paired differences:
every part to MNRL + hard negatives, MNRL + hard negatives to the zero-shot model) is rewritten after each.
``only_seeds`` splits the seeds between processes that share the folder (one core each); a run cut off by a
stopped process resumes from its last checkpoint (``checkpoint_every``), and its record then says from which step
(``resumed_from_step``; its ``seconds`` count only the resumed part).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo.checkpoints import last_checkpoint
from hf_margin.demo.data.retrieval import meaning_key
from hf_margin.demo.embedding import OURS, REFERENCE, EmbeddingSetup
from hf_margin.demo.evidence.records import (
    append_record,
    check_methods_and_seeds,
    paired_row,
    plot_paired_differences,
    read_records,
    save_summary,
    seeds_to_run,
    setup_json,
    summarise,
)

BASELINE = REFERENCE
ZERO_SHOT = "zero-shot"
METHODS = (BASELINE, *OURS)
SETS = {"ICD-10-CM held-out codes": "ICD", "chatterbot Q->A (not trained on)": "chatterbot"}
METRICS = ("R@1 ICD", "nDCG@10 ICD", "R@1 chatterbot", "nDCG@10 chatterbot")
STATISTICS = ("mean_focal_weight", "filtered_share", "similarity_gap")
ENTRY = "evidence/embedding_long"


@dataclass(frozen=True)
class LongBudgetSetup:
    """Budget and protocol of evidence experiment 3 (fields as `hf_margin.demo.embedding.EmbeddingSetup`).

    Args:
        methods: which of `METHODS` to train (MNRL + hard negatives, the baseline, is always trained).
        seeds: seeds (each: a code split, mined rows, an initialisation and a data order, shared by every method).
        only_seeds: run only these of the seeds (empty: all), to share one out_dir between processes; the summary
            covers every record in the folder.
        steps: optimizer steps per run.
        batch_size: rows per step (the in-batch negatives of a query are the other rows' texts).
        mini_batch_size: texts per forward pass of the GradCache losses (0: the plain losses).
        learning_rate: AdamW learning rate (linear decay after 10% warm-up).
        num_negatives: mined hard negatives per row.
        rank_first, rank_last: the zero-shot ranks [first, last) the negatives are sampled from.
        consistency_top_k: drop a pair whose positive is not in the zero-shot top k.
        scale: inverse temperature of every loss.
        focal_gamma: gamma of "ours: focal" and "ours: all parts".
        focal_normalize: focal weights of mean 1 in the batch (MNRL's step size).
        filter_margin: relative margin of the self-guided false-negative filter.
        num_mixed: pairwise-mixed synthetic negatives per query.
        distill_weight: weight of the soft-label KL term (teacher: the zero-shot model).
        test_queries: held-out ICD queries evaluated (0: all).
        max_seq_length: token budget per text.
        near_duplicates: keep the ICD descriptions near-identical to the training codes' in the mining corpus.
        duplicate_batches: training batches drawn per seed to count the near-duplicate negatives.
        checkpoint_every: save a checkpoint every that many steps (0: never); a run cut off by a stopped process
            resumes from its last one, and its folder is removed once its record is written.
    """

    methods: tuple[str, ...] = METHODS
    seeds: int = 3
    only_seeds: tuple[int, ...] = ()
    steps: int = 1000
    batch_size: int = 64
    mini_batch_size: int = 32
    learning_rate: float = 5e-5
    num_negatives: int = 3
    rank_first: int = 0
    rank_last: int = 30
    consistency_top_k: int = 50
    scale: float = 20.0
    focal_gamma: float = 2.0
    focal_normalize: bool = True
    filter_margin: float = 0.05
    num_mixed: int = 4
    distill_weight: float = 1.0
    test_queries: int = 0
    max_seq_length: int = 64
    near_duplicates: bool = True
    duplicate_batches: int = 200
    checkpoint_every: int = 100

    def for_seed(self, seed: int) -> EmbeddingSetup:
        """The embedding demo's setup of one seed (retrieval among every ICD description, chatterbot too)."""
        fields = asdict(self)
        del fields["methods"], fields["seeds"], fields["only_seeds"], fields["duplicate_batches"]
        del fields["checkpoint_every"]
        return EmbeddingSetup(methods=self.methods, seed=seed, full_corpus=True, chatterbot=True, **fields)


def duplicate_shares(rows: Any, batches: Iterable[list[int]]) -> dict[str, float]:
    """Shares of near-duplicates of a query's positive (same `meaning_key`) among its negatives in `batches`.

    Args:
        rows: the training rows (columns anchor, positive, negative_1..M).
        batches: row indices of training batches.

    Returns:
        "in-batch": among every negative a query sees in its batch (the other rows' positives and every row's hard
        negatives, as MNRL); "own hard negatives": among its own mined negatives; and the batches counted.
    """
    negatives = [c for c in rows.column_names if c.startswith("negative_")]
    positives = [meaning_key(t) for t in rows["positive"]]
    hard = [[meaning_key(t) for t in rows[c]] for c in negatives]
    seen = duplicates = own_seen = own_duplicates = count = 0
    for batch in batches:
        count += 1
        pool = [positives[i] for i in batch] + [column[i] for column in hard for i in batch]
        for row in batch:
            key = positives[row]
            duplicates += sum(k == key for k in pool) - 1  # its own positive is not a negative
            seen += len(pool) - 1
            own = [column[row] for column in hard]
            own_duplicates += sum(k == key for k in own)
            own_seen += len(own)
    return {
        "in-batch": duplicates / max(seen, 1),
        "own hard negatives": own_duplicates / max(own_seen, 1),
        "batches": float(count),
    }


def training_batches(rows: Any, batch_size: int, count: int, seed: int) -> list[list[int]]:
    """The first `count` batches of sentence-transformers' no-duplicates sampler over `rows` (the trainer's kind)."""
    import torch
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    texts = rows.select_columns([c for c in rows.column_names if c != "scores"])  # as the trainer's columns
    sampler = NoDuplicatesBatchSampler(texts, batch_size, drop_last=True, generator=torch.Generator().manual_seed(seed))
    batches: list[list[int]] = []
    while len(batches) < count:
        before = len(batches)
        batches.extend(b for b, _ in zip(sampler, range(count - len(batches)), strict=False))
        if len(batches) == before:
            break  # fewer rows than one batch
    return batches


def run(context: DemoContext, setup: LongBudgetSetup | None = None) -> list[DemoRow]:
    """Run every missing (method, seed) record, appending each to records.jsonl; return the table rows."""
    from hf_margin.demo import embedding
    from hf_margin.demo.data import retrieval

    setup = setup or LongBudgetSetup()
    check_methods_and_seeds(setup.methods, METHODS, setup.seeds)
    for name in ("steps", "duplicate_batches"):
        if getattr(setup, name) < 1:
            raise ValueError(f"`{name}` must be >= 1, got {getattr(setup, name)}")
    if setup.checkpoint_every < 0:
        raise ValueError(f"`checkpoint_every` must be >= 0, got {setup.checkpoint_every}")
    seeds = seeds_to_run(setup.seeds, setup.only_seeds)
    methods = [ZERO_SHOT, *(m for m in METHODS if m in setup.methods or m == BASELINE)]
    records_path = context.out_dir / "records.jsonl"
    done = {(r["method"], r["seed"]) for r in read_records(records_path)}
    bar = context.progress(total=len(methods) * len(seeds), desc="evidence: embedding loss, long budget", unit="run")
    bar.update(sum((m, s) in done for m in methods for s in seeds))
    for seed in seeds:
        todo = [m for m in methods if (m, seed) not in done]
        if not todo:
            continue
        seed_setup = setup.for_seed(seed)
        zero_shot, rows, sets = embedding.prepare(seed_setup)
        duplicates = duplicate_shares(rows, training_batches(rows, setup.batch_size, setup.duplicate_batches, seed))
        for method in todo:
            folder = embedding.run_dir(context.out_dir, method, seed_setup)
            resumed = last_checkpoint(folder) if setup.checkpoint_every and method != ZERO_SHOT else None
            start = time.perf_counter()
            model, logs = (
                (zero_shot, [])
                if method == ZERO_SHOT
                else embedding.train(method, rows, zero_shot, seed_setup, context.out_dir, setup.checkpoint_every)
            )
            seconds = time.perf_counter() - start
            record: dict[str, Any] = {"all": "all", "method": method, "seed": seed, "seconds": seconds}
            record["resumed_from_step"] = int(resumed.name.removeprefix("checkpoint-")) if resumed else 0
            for name, data in sets.items():
                scores = retrieval.retrieval_metrics(model.eval(), data)
                record |= {f"{metric} {SETS[name]}": value for metric, value in scores.items()}
            record |= {"training_rows": len(rows), "duplicates": duplicates, "statistics": _mean_statistics(logs)}
            append_record(records_path, record)
            shutil.rmtree(folder, ignore_errors=True)  # its checkpoint
            _write_summary(context, setup)
            bar.update()
    bar.close()
    summary = _write_summary(context, setup)  # with the records another process added to the folder
    plot_paired_differences(
        summary["results"],
        METRICS,
        context.out_dir / "paired_differences.png",
        xlabel="all seeds",
        title=f"MarginEmbeddingLoss parts - MNRL + hard negatives, {setup.steps} steps of {setup.batch_size} rows",
    )
    return rows_from_records(read_records(records_path))


def _mean_statistics(logs: list[dict[str, Any]]) -> dict[str, float]:
    """The loss's logged statistics (focal weight, filtered share, similarity gap) averaged over the logs."""
    return {name: float(np.mean([e[name] for e in logs])) for name in STATISTICS if logs and name in logs[0]}


def _baseline_of(method: str) -> str | None:
    return {ZERO_SHOT: None, BASELINE: ZERO_SHOT}.get(method, BASELINE)


def _write_summary(context: DemoContext, setup: LongBudgetSetup) -> dict[str, Any]:
    records = read_records(context.out_dir / "records.jsonl")
    results = summarise(
        records, setting="all", method="method", metrics=METRICS, baseline_of=_baseline_of, order=(ZERO_SHOT, *METHODS)
    )
    summary = {"setup": setup_json(setup), "results": results}
    save_summary(context.out_dir, summary)
    return summary


def rows_from_records(records: list[dict[str, Any]]) -> list[DemoRow]:
    """One row per (method, metric) against its baseline: means over the seeds both have; the note gives the paired
    difference with its 95% interval and the seed count."""
    by_key = {(r["method"], r["seed"]): r for r in records}
    rows = []
    for method in METHODS:
        baseline = _baseline_of(method)
        if baseline is None:
            continue
        for metric in METRICS:
            dataset = "ICD-10-CM held-out codes" if metric.endswith("ICD") else "chatterbot Q->A"
            names = (method, baseline, metric)
            row = paired_row(by_key, (method,), (baseline,), metric, entry=ENTRY, names=names, dataset=dataset)
            rows += [row] if row else []
    return rows
