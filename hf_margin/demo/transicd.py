"""Demo entry: TransICD (code-wise attention + LDAM) against code-wise attention with BCE and a mean-pooled
encoder with BCE, on multi-label ICD-10-CM pseudo-notes (`hf_margin.demo.data.icd_notes`), all with an
all-MiniLM-L6-v2 encoder fine-tuned at the same budget; the paper's table: micro/macro AUC, micro/macro F1, P@5.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hf_margin._validation import check_choice
from hf_margin.demo import DemoContext, DemoRow

OURS = "TransICD (attention + LDAM)"
WITH_DRW = "TransICD + DRW"
METHODS = ("mean pooling + BCE", "code-wise attention + BCE", OURS, WITH_DRW)
MODEL_OPTIONS = {
    "mean pooling + BCE": {"pooling": "mean", "loss": "bce"},
    "code-wise attention + BCE": {"pooling": "attention", "loss": "bce"},
    OURS: {"pooling": "attention", "loss": "ldam"},
    WITH_DRW: {"pooling": "attention", "loss": "ldam"},
}


@dataclass(frozen=True)
class TransICDSetup:
    """Budget of the comparison (defaults: the demo's short run; the recipe passes more).

    Args:
        methods: which of METHODS to train ("TransICD + DRW" adds Cao et al.'s deferred re-weighting).
        num_labels: ICD-10-CM categories used as labels; None: every category with `min_snippets` snippets (1,815
            of the 1,918 3-character categories with min_snippets=2).
        min_snippets: categories with fewer snippets of wording are not used.
        train_notes, test_notes: pseudo-notes built for training and testing.
        steps: optimizer steps per method.
        batch_size: notes per step.
        learning_rate: AdamW learning rate (encoder and head).
        max_length: tokens per note.
        ldam_c: C of the LDAM margins.
        drw_epoch: the epoch at which "TransICD + DRW" switches to effective-number label weights.
        corpus: "icd" (ICD-10-CM pseudo-notes) or "reuters" (Reuters-21578 grain/corn from the `weka` package;
            see `hf_margin.demo.data.reuters` for the one-time download).
        weka_dir: where the `weka` package was extracted (for corpus="reuters").
        encoder: "transformer" (the paper's own 2-layer encoder, d = 128, over the MiniLM tokenizer's vocabulary,
            trained from scratch) or "minilm" (all-MiniLM-L6-v2 fine-tuned).
        seed: seed of the corpus, the initialisation and the data order.
    """

    methods: tuple[str, ...] = ("code-wise attention + BCE", OURS)
    num_labels: int | None = 20
    min_snippets: int = 10
    train_notes: int = 1500
    test_notes: int = 400
    steps: int = 250
    batch_size: int = 16
    learning_rate: float = 1e-3
    max_length: int = 64
    ldam_c: float = 3.0
    drw_epoch: int = 3
    corpus: str = "icd"
    weka_dir: str | None = None
    encoder: str = "transformer"
    seed: int = 0


def _dataset(tokenizer: Any, texts: list[str], labels: list[list[int]], max_length: int) -> Any:
    import datasets

    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    return datasets.Dataset.from_dict({**encoded, "labels": [[float(v) for v in row] for row in labels]})


def train_and_evaluate(
    method: str, data: Any, train: Any, test: Any, tokenizer: Any, setup: TransICDSetup, out_dir: Any
) -> tuple[dict[str, float], dict[str, float]]:
    """Fine-tune one model with `method`'s head and loss; return its test metrics and its training cost (seconds
    per step and the peak memory the training added, `training_cost`)."""
    probabilities, cost = train_and_predict(method, data, train, test, tokenizer, setup, out_dir)
    return evaluation_metrics(probabilities, data), cost


def evaluation_metrics(probabilities: np.ndarray, data: Any) -> dict[str, float]:
    """`multilabel_metrics` of (test notes, labels) `probabilities` against `data`'s test labels: threshold 0.5,
    P@k with k = 5 (or the number of labels, when fewer)."""
    from hf_margin.metrics import multilabel_metrics

    k = min(5, len(data.label_names))
    return multilabel_metrics(probabilities, np.asarray(data.test_labels), threshold=0.5, k=k)


def train_and_predict(
    method: str, data: Any, train: Any, test: Any, tokenizer: Any, setup: TransICDSetup, out_dir: Any
) -> tuple[np.ndarray, dict[str, float]]:
    """Fine-tune one model with `method`'s head and loss; return its (test notes, labels) probabilities and its
    training cost (seconds per step and the peak memory the training added, `training_cost`)."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from hf_margin.callbacks import DRWCallback
    from hf_margin.demo.data.pretrained import minilm_path
    from hf_margin.models.transicd import TransICDConfig, TransICDModel

    torch.manual_seed(setup.seed)
    options: dict[str, Any] = {"ldam_c": setup.ldam_c, **MODEL_OPTIONS[method]}
    if setup.encoder == "minilm":
        model = TransICDModel.from_backbone(minilm_path(), data.label_names, data.label_counts, **options)
    else:
        labels = dict(enumerate(data.label_names))
        vocabulary: dict[str, Any] = {"vocab_size": tokenizer.vocab_size, "pad_token_id": tokenizer.pad_token_id}
        model = TransICDModel(TransICDConfig(id2label=labels, label_counts=data.label_counts, **vocabulary, **options))
    args = TrainingArguments(
        output_dir=str(out_dir / "runs" / method.split()[0]),
        max_steps=setup.steps,
        per_device_train_batch_size=setup.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=setup.learning_rate,
        warmup_steps=max(1, setup.steps // 10),
        seed=setup.seed,
        report_to="none",
        save_strategy="no",
        logging_steps=max(1, setup.steps // 4),
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = Trainer(model, args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer))
    if method == WITH_DRW:
        trainer.add_callback(DRWCallback(model.loss_fct, switch_epoch=setup.drw_epoch))
    cost = training_cost(trainer.train)
    prediction = trainer.predict(test)
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    return probabilities, {"seconds_per_step": cost["seconds"] / setup.steps, "peak_mib": cost["peak_mib"]}


def training_cost(train: Any) -> dict[str, float]:
    """Run `train()`; its wall-clock seconds and the peak memory it added in MiB (the process's peak resident set
    above the resident set before it, Linux; 0 where /proc is missing)."""
    status = Path("/proc/self/status")
    before = _resident_kib("VmRSS:") if status.exists() else 0
    if status.exists():
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current resident set
    start = time.perf_counter()
    train()
    seconds = time.perf_counter() - start
    peak = (_resident_kib("VmHWM:") - before) / 1024 if status.exists() else 0.0
    return {"seconds": seconds, "peak_mib": peak}


def _resident_kib(field: str) -> int:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1])


def run(context: DemoContext, setup: TransICDSetup = TransICDSetup()) -> list[DemoRow]:
    from transformers import AutoTokenizer

    from hf_margin.demo.data.icd_notes import icd_pseudo_notes
    from hf_margin.demo.data.pretrained import minilm_path
    from hf_margin.demo.data.reuters import load_reuters_grain_corn

    check_choice(setup.encoder, "encoder", ("transformer", "minilm"))
    check_choice(setup.corpus, "corpus", ("icd", "reuters"))
    unknown = [m for m in setup.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    if setup.corpus == "reuters":
        data: Any = load_reuters_grain_corn(setup.weka_dir)
    else:
        data = icd_pseudo_notes(
            setup.num_labels, setup.train_notes, setup.test_notes, min_snippets=setup.min_snippets, seed=setup.seed
        )
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    train = _dataset(tokenizer, data.train_texts, data.train_labels, setup.max_length)
    test = _dataset(tokenizer, data.test_texts, data.test_labels, setup.max_length)
    results, timings, costs = {}, {}, {}
    for method in context.progress(setup.methods, desc="TransICD demo", unit="method", leave=False):
        start = time.perf_counter()
        results[method], costs[method] = train_and_evaluate(
            method, data, train, test, tokenizer, setup, context.out_dir
        )
        timings[method] = time.perf_counter() - start
    report = {
        "setup": asdict(setup),
        "label_counts": dict(zip(data.label_names, data.label_counts, strict=True)),
        "results": results,
        "seconds": timings,
        "training_cost": costs,
    }
    (context.out_dir / "transicd.json").write_text(json.dumps(report, indent=2))
    dataset = "Reuters grain/corn" if setup.corpus == "reuters" else "ICD-10-CM pseudo-notes"
    return rows_from_results(results, timings, dataset)


def rows_from_results(
    results: dict[str, dict[str, float]], timings: dict[str, float], dataset: str = "ICD-10-CM pseudo-notes"
) -> list[DemoRow]:
    """TransICD (and TransICD + DRW) against each baseline that was trained, on every metric."""
    rows = []
    for method in (m for m in (OURS, WITH_DRW) if m in results):
        for baseline in (m for m in results if m not in (OURS, WITH_DRW)):
            for metric, value in results[method].items():
                rows.append(
                    DemoRow(
                        "transicd", method, baseline, metric, value, results[baseline][metric], timings[method], dataset
                    )
                )
    return rows
