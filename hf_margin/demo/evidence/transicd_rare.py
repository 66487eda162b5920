"""Evidence 4: TransICD's LDAM loss where labels are rare (a long tail, as in MIMIC), paired by seed.

Setting. ICD-10-CM pseudo-notes (`hf_margin.demo.data.icd_notes`) over 300 categories: a note's labels are drawn in
proportion to their categories' snippet counts, so with 3,000 training notes about half the labels have 1-10
training notes and a few have hundreds (seed 0: 162 labels with 1-10, 97 with 11-50, 32 with more, 9 with none).
The model is TransICD (Biswas et al., arXiv:2104.10652): the paper's 2-layer transformer encoder (d = 128, trained
from scratch) and code-wise attention, trained with LDAM (Cao et al., arXiv:1906.07413; margins
``C / n_j^(1/4)``), with and without deferred re-weighting (DRW), against the same model trained with BCE, at the same
budget (`hf_margin.demo.transicd.train_and_predict`). LDAM's claim is that the label-dependent margins improve the
rare labels, so macro F1 (every label counts the same) more than micro F1; the records also hold macro F1 and macro
AUC over the rare labels alone (1-10 training notes: ``rare_macro_f1``, ``rare_macro_auc``).

Per seed, the corpus (labels, notes, split), the initialisation and the data order are drawn from the seed and shared
by every method. Each finished (method, seed) run is appended at once to ``records.jsonl``; ``summary.json`` (means,
95% intervals, paired differences to BCE) is rewritten after each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo.evidence.records import (
    append_record,
    check_methods_and_seeds,
    paired_row,
    read_records,
    save_summary,
    summarise,
)
from hf_margin.demo.transicd import OURS, WITH_DRW, TransICDSetup

BASELINE = "code-wise attention + BCE"
METHODS = (BASELINE, OURS, WITH_DRW)
METRICS = ("macro_f1", "macro_auc", "micro_f1", "micro_auc", "rare_macro_f1", "rare_macro_auc")
ENTRY = "evidence/transicd_rare"
RARE = (1, 10)  # training notes of a rare label (MIMIC's long tail)


@dataclass(frozen=True)
class RareLabelsSetup:
    """Budget and protocol of evidence experiment 4 (fields as `hf_margin.demo.transicd.TransICDSetup`).

    Args:
        methods: which of `METHODS` to train (the BCE baseline is always trained).
        seeds: seeds (each: a corpus, an initialisation and a data order, shared by every method).
        num_labels: ICD-10-CM categories used as labels.
        min_snippets: categories with fewer snippets of wording are not used.
        train_notes, test_notes: pseudo-notes built for training and testing.
        steps: optimizer steps per run.
        batch_size: notes per step.
        learning_rate: AdamW learning rate.
        max_length: tokens per note.
        ldam_c: C of the LDAM margins.
        drw_epoch: the epoch at which "TransICD + DRW" switches to effective-number label weights.
    """

    methods: tuple[str, ...] = METHODS
    seeds: int = 5
    num_labels: int = 300
    min_snippets: int = 4
    train_notes: int = 3000
    test_notes: int = 1500
    steps: int = 1000
    batch_size: int = 16
    learning_rate: float = 1e-3
    max_length: int = 96
    ldam_c: float = 3.0
    drw_epoch: int = 4

    def for_seed(self, seed: int) -> TransICDSetup:
        """The TransICD demo's setup of one seed (the paper's encoder, ICD pseudo-notes)."""
        fields = asdict(self)
        del fields["methods"], fields["seeds"]
        return TransICDSetup(methods=self.methods, seed=seed, encoder="transformer", corpus="icd", **fields)


def label_bands(counts: list[int]) -> dict[str, int]:
    """How many labels have no training note, 1-10 (rare), 11-50, and more."""
    array = np.asarray(counts)
    return {
        "none": int((array == 0).sum()),
        "rare (1-10)": int(_rare(array).sum()),
        "11-50": int(((array > RARE[1]) & (array <= 50)).sum()),
        "over 50": int((array > 50).sum()),
    }


def label_metrics(probabilities: np.ndarray, data: Any) -> dict[str, float]:
    """`multilabel_metrics` of the test notes at threshold 0.5, plus macro F1 and macro AUC over the rare labels only
    (1-10 training notes: ``rare_macro_f1``, ``rare_macro_auc``; each left out when no label is rare, or when no rare
    label has both classes in the test notes)."""
    from hf_margin.demo.transicd import evaluation_metrics
    from hf_margin.metrics import multilabel_metrics

    targets = np.asarray(data.test_labels)
    metrics = evaluation_metrics(probabilities, data)
    rare = _rare(np.asarray(data.label_counts))
    if rare.any():
        band = multilabel_metrics(probabilities[:, rare], targets[:, rare], threshold=0.5, k=1)
        metrics |= {f"rare_{name}": band[name] for name in ("macro_f1", "macro_auc") if name in band}
    return metrics


def _rare(counts: np.ndarray) -> np.ndarray:
    """Which labels are rare: 1-10 training notes (`RARE`)."""
    return (counts >= RARE[0]) & (counts <= RARE[1])


def run(context: DemoContext, setup: RareLabelsSetup | None = None) -> list[DemoRow]:
    """Run every missing (method, seed) record, appending each to records.jsonl; return the table rows."""
    from transformers import AutoTokenizer

    from hf_margin.demo.data.icd_notes import icd_pseudo_notes
    from hf_margin.demo.data.pretrained import minilm_path
    from hf_margin.demo.transicd import _dataset, train_and_predict

    setup = setup or RareLabelsSetup()
    check_methods_and_seeds(setup.methods, METHODS, setup.seeds)
    methods = [m for m in METHODS if m in setup.methods or m == BASELINE]
    records_path = context.out_dir / "records.jsonl"
    done = {(r["method"], r["seed"]) for r in read_records(records_path)}
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    bar = context.progress(total=len(methods) * setup.seeds, desc="evidence: TransICD rare labels", unit="run")
    bar.update(sum((m, s) in done for m in methods for s in range(setup.seeds)))
    for seed in range(setup.seeds):
        todo = [m for m in methods if (m, seed) not in done]
        if not todo:
            continue
        run_setup = setup.for_seed(seed)
        data = icd_pseudo_notes(
            setup.num_labels, setup.train_notes, setup.test_notes, min_snippets=setup.min_snippets, seed=seed
        )
        train = _dataset(tokenizer, data.train_texts, data.train_labels, setup.max_length)
        test = _dataset(tokenizer, data.test_texts, data.test_labels, setup.max_length)
        for method in todo:
            probabilities, cost = train_and_predict(method, data, train, test, tokenizer, run_setup, context.out_dir)
            record = {"all": "all", "method": method, "seed": seed, **label_metrics(probabilities, data), **cost}
            record |= {"seconds": cost["seconds_per_step"] * setup.steps, "label_bands": label_bands(data.label_counts)}
            append_record(records_path, record)
            _write_summary(context, setup)
            bar.update()
    bar.close()
    return rows_from_records(read_records(records_path))


def _write_summary(context: DemoContext, setup: RareLabelsSetup) -> None:
    records = read_records(context.out_dir / "records.jsonl")
    results = summarise(
        records,
        setting="all",
        method="method",
        metrics=_recorded_metrics(records),
        baseline_of=lambda m: None if m == BASELINE else BASELINE,
        order=METHODS,
    )["all"]
    summary = {"setup": asdict(setup), "results": results}
    save_summary(context.out_dir, summary)


def _recorded_metrics(records: list[dict[str, Any]]) -> list[str]:
    """The `METRICS` every record holds (the rare-label ones are absent from runs without rare labels)."""
    return [metric for metric in METRICS if all(metric in record for record in records)]


def rows_from_records(records: list[dict[str, Any]]) -> list[DemoRow]:
    """One row per (method, metric) against BCE: means over the seeds both have; the note gives the paired
    difference with its 95% interval and the seed count."""
    by_key = {(r["method"], r["seed"]): r for r in records}
    rows = []
    for method in (m for m in METHODS if m != BASELINE):
        for metric in _recorded_metrics(records):
            names = (method, BASELINE, metric)
            dataset = "ICD-10-CM pseudo-notes, long tail"
            row = paired_row(by_key, (method,), (BASELINE,), metric, entry=ENTRY, names=names, dataset=dataset)
            rows += [row] if row else []
    return rows
