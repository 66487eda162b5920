"""Demo entry: fine-tuning all-MiniLM-L6-v2 for ICD-10-CM term -> code-description retrieval with
MarginEmbeddingLoss against MultipleNegativesRankingLoss and GISTEmbedLoss (the recipe runs the full ablation).

1. ICD-10-CM inclusion terms are split by code (20% of codes held out). Training pairs (term, description) are
   drawn from the other codes; hard negatives are mined from the zero-shot model with KaLM's recipe (sample from
   a rank window, drop pairs whose positive is not in the top `consistency_top_k`) among the training codes'
   descriptions; the zero-shot model also gives the teacher scores for the soft labels.
2. Every method trains a fresh copy of the model on the same rows, in the same order, for the same steps
   (no-duplicates batches, sentence-transformers' standard for in-batch negatives). GISTEmbedLoss accepts one
   hard negative per row, so it gets the first of them; plain MNRL gets none.
3. R@1, R@10 and nDCG@10 of the held-out codes' terms against the descriptions; the recipe also evaluates on
   chatterbot-corpus question -> answer retrieval, which is never trained on.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo.checkpoints import last_checkpoint
from hf_margin.demo.icd_triples import MiningSetup, mined_icd_rows

BASELINES = ("MNRL", "MNRL + hard negatives", "GISTEmbedLoss")
OURS = ("ours: focal", "ours: filter", "ours: mixing", "ours: soft labels", "ours: all parts")
METHODS = BASELINES + OURS
REFERENCE = "MNRL + hard negatives"


@dataclass(frozen=True)
class EmbeddingSetup:
    """Budget and switches of the comparison (defaults: the demo's short run; the recipe passes more).

    Args:
        methods: which of METHODS to train ("MNRL", "MNRL + hard negatives", "GISTEmbedLoss", "ours: focal",
            "ours: filter", "ours: mixing", "ours: soft labels", "ours: all parts").
        steps: optimizer steps per method.
        batch_size: training rows per step.
        learning_rate: AdamW learning rate (linear decay after 10% warm-up).
        num_negatives: mined hard negatives per pair.
        rank_first, rank_last: KaLM's rank window [first, last) the negatives are sampled from.
        consistency_top_k: KaLM drops a pair whose positive is not in this top.
        scale: inverse temperature of every loss (20 = temperature 0.05, also used for GISTEmbedLoss).
        focal_gamma: gamma of "ours: focal" and "ours: all parts".
        focal_normalize: normalise their focal weights to mean 1 in the batch (the step size of MNRL).
        filter_margin: relative margin of the self-guided false-negative filter.
        num_mixed: pairwise-mixed synthetic negatives per query.
        distill_weight: weight of the soft-label KL term (teacher: the zero-shot model).
        test_queries: held-out queries evaluated (0: all).
        full_corpus: retrieve among every ICD description (else only among the held-out codes').
        chatterbot: also evaluate on chatterbot-corpus question -> answer retrieval.
        max_seq_length: token budget per text.
        near_duplicates: keep the ICD descriptions near-identical to the training codes' in the corpus the negatives
            are mined from (`hf_margin.demo.data.retrieval.icd10_retrieval`): false negatives for the filter.
        mini_batch_size: 0 trains with the plain losses; above 0, with their GradCache variants
            (CachedMultipleNegativesRankingLoss, CachedGISTEmbedLoss, CachedMarginEmbeddingLoss: the same
            gradients, memory of `mini_batch_size` texts per forward pass, one extra forward pass per step).
        seed: seed of the split, the sampled rows, the mining and training.
    """

    methods: tuple[str, ...] = (REFERENCE, "ours: all parts")
    steps: int = 6
    batch_size: int = 32
    learning_rate: float = 5e-5
    num_negatives: int = 3
    rank_first: int = 10
    rank_last: int = 50
    consistency_top_k: int = 50
    scale: float = 20.0
    focal_gamma: float = 2.0
    focal_normalize: bool = False
    filter_margin: float = 0.05
    num_mixed: int = 4
    distill_weight: float = 1.0
    test_queries: int = 200
    full_corpus: bool = False
    chatterbot: bool = False
    max_seq_length: int = 64
    near_duplicates: bool = False
    mini_batch_size: int = 0
    seed: int = 0


def _model(setup: EmbeddingSetup) -> Any:
    from sentence_transformers import SentenceTransformer

    from hf_margin.demo.data.pretrained import minilm_path

    model = SentenceTransformer(minilm_path(), device="cpu")
    model.max_seq_length = setup.max_seq_length
    return model


def make_loss(method: str, model: Any, guide: Any, setup: EmbeddingSetup) -> Any:
    """The loss object of one compared method (its GradCache variant when ``setup.mini_batch_size > 0``)."""
    from sentence_transformers.sentence_transformer import losses

    from hf_margin.embeddings import CachedMarginEmbeddingLoss, MarginEmbeddingLoss

    cached: dict[str, Any] = {"mini_batch_size": setup.mini_batch_size} if setup.mini_batch_size > 0 else {}
    if method in ("MNRL", REFERENCE):
        mnrl = losses.CachedMultipleNegativesRankingLoss if cached else losses.MultipleNegativesRankingLoss
        return mnrl(model, scale=setup.scale, **cached)
    if method == "GISTEmbedLoss":
        gist = losses.CachedGISTEmbedLoss if cached else losses.GISTEmbedLoss
        return gist(model, guide, temperature=1.0 / setup.scale, **cached)
    focal = {"focal_gamma": setup.focal_gamma, "focal_normalize": setup.focal_normalize}
    parts: dict[str, dict[str, Any]] = {
        "ours: focal": focal,
        "ours: filter": {"filter_strategy": "relative", "filter_margin": setup.filter_margin},
        "ours: mixing": {"mixing": "pairwise", "num_mixed": setup.num_mixed},
        "ours: soft labels": {"distill_weight": setup.distill_weight},
    }
    if method == "ours: all parts":
        options = {key: value for part in parts.values() for key, value in part.items()}
    elif method in parts:
        options = parts[method]
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    ours = CachedMarginEmbeddingLoss if cached else MarginEmbeddingLoss
    return ours(model, scale=setup.scale, seed=setup.seed, **cached, **options)


def train(
    method: str,
    rows: Any,
    guide: Any,
    setup: EmbeddingSetup,
    out_dir: Path,
    checkpoint_every: int = 0,
    callbacks: Sequence[Any] = (),
) -> tuple[Any, list[dict]]:
    """Fine-tune a fresh copy of the model with `method`; return it and its training logs.

    The run's folder is `run_dir`. With `checkpoint_every` > 0 a checkpoint is saved there every that many steps
    (the last one kept) and a training cut off there resumes from its last complete checkpoint, with the same
    data order and random state. `callbacks` are transformers `TrainerCallback`s given to the trainer."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    from hf_margin.callbacks import checkpoint_loss_generator, log_loss_statistics

    model = _model(setup)
    loss = make_loss(method, model, guide, setup)
    negatives = [c for c in rows.column_names if c.startswith("negative_")]
    if method == "MNRL":
        negatives = []
    elif method == "GISTEmbedLoss":
        negatives = negatives[:1]  # GISTEmbedLoss takes (anchor, positive[, negative]) only
    columns = ["anchor", "positive", *negatives]
    if method in ("ours: soft labels", "ours: all parts"):
        columns.append("scores")
    output_dir = run_dir(out_dir, method, setup)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        max_steps=setup.steps,
        per_device_train_batch_size=setup.batch_size,
        learning_rate=setup.learning_rate,
        warmup_steps=max(1, setup.steps // 10),
        seed=setup.seed,
        data_seed=setup.seed,
        report_to="none",
        save_strategy="steps" if checkpoint_every else "no",
        save_steps=checkpoint_every or setup.steps,
        save_total_limit=1,
        logging_steps=max(1, setup.steps // 5),
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=rows.select_columns(columns), loss=loss, callbacks=list(callbacks)
    )
    if hasattr(loss, "pop_statistics"):
        log_loss_statistics(trainer)
    if getattr(loss, "owns_generator", False):
        checkpoint_loss_generator(trainer)
    resume = last_checkpoint(output_dir) if checkpoint_every else None
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return model, [entry for entry in trainer.state.log_history if "loss" in entry]


def run_dir(out_dir: Path, method: str, setup: EmbeddingSetup) -> Path:
    """The trainer's output folder of one run under `out_dir`: one per method, seed and setup (a digest of every
    field but `methods`), so that a checkpoint is only resumed by the run that wrote it."""
    fields = asdict(setup)
    del fields["methods"]
    digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()[:8]
    return out_dir / "runs" / f"{method.replace(' ', '_').replace(':', '')}_seed{setup.seed}_{digest}"


def evaluation_sets(setup: EmbeddingSetup, data: Any) -> dict[str, Any]:
    """The retrieval sets every model is scored on."""
    from hf_margin.demo.data.retrieval import RetrievalSet, chatterbot_retrieval

    test = data.test.sample(setup.test_queries, setup.seed) if setup.test_queries else data.test
    if not setup.full_corpus:
        held_out = sorted(set().union(*data.test.relevant))
        test = RetrievalSet(test.queries, test.relevant, held_out)
    sets = {"ICD-10-CM held-out codes": test}
    if setup.chatterbot:
        sets["chatterbot Q->A (not trained on)"] = chatterbot_retrieval()
    return sets


def prepare(setup: EmbeddingSetup) -> tuple[Any, Any, dict[str, Any]]:
    """The zero-shot model (miner, guide and teacher), the mined training rows of `setup.seed`'s split, and the
    evaluation sets."""
    from hf_margin.demo.data.retrieval import icd10_retrieval

    torch.manual_seed(setup.seed)
    data = icd10_retrieval(seed=setup.seed, near_duplicates=setup.near_duplicates)
    zero_shot = _model(setup).eval()
    mining = MiningSetup(
        setup.steps * setup.batch_size,
        setup.num_negatives,
        (setup.rank_first, setup.rank_last),
        setup.consistency_top_k,
        setup.seed,
    )
    rows = mined_icd_rows(mining, data.train_pairs, data.train_corpus, zero_shot)
    return zero_shot, rows, evaluation_sets(setup, data)


def run(context: DemoContext, setup: EmbeddingSetup = EmbeddingSetup()) -> list[DemoRow]:
    from hf_margin.demo.data.retrieval import retrieval_metrics

    unknown = [m for m in setup.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    zero_shot, rows, sets = prepare(setup)
    results: dict[str, dict[str, dict[str, float]]] = {
        "zero-shot": {name: retrieval_metrics(zero_shot, s) for name, s in sets.items()}
    }
    timings: dict[str, float] = {}
    statistics: dict[str, list[dict]] = {}
    for method in context.progress(setup.methods, desc="embedding demo", unit="method", leave=False):
        start = time.perf_counter()
        model, logs = train(method, rows, zero_shot, setup, context.out_dir)
        timings[method] = time.perf_counter() - start
        results[method] = {name: retrieval_metrics(model.eval(), s) for name, s in sets.items()}
        statistics[method] = logs
    report = {
        "setup": asdict(setup),
        "training_rows": len(rows),
        "results": results,
        "seconds": timings,
        "training_logs": statistics,
    }
    (context.out_dir / "embedding.json").write_text(json.dumps(report, indent=2))
    if len(setup.methods) > 2:
        plot_ablation(results, context.out_dir / "embedding_ablation.png")
    return rows_from_results(results, timings)


def rows_from_results(results: dict[str, dict[str, dict[str, float]]], timings: dict[str, float]) -> list[DemoRow]:
    """Each of ours against MNRL + hard negatives (when trained), each baseline against the zero-shot model."""
    rows = []
    for method, per_set in results.items():
        if method == "zero-shot":
            continue
        baseline = REFERENCE if method in OURS and REFERENCE in results else "zero-shot"
        for dataset, metrics in per_set.items():
            for metric, value in metrics.items():
                rows.append(
                    DemoRow(
                        "embedding",
                        method,
                        baseline,
                        f"{metric} {dataset.split()[0]}",
                        value,
                        results[baseline][dataset][metric],
                        timings[method],
                        dataset,
                    )
                )
    return rows


def plot_ablation(results: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    """Grouped bars: every method's R@1 and nDCG@10 on each evaluation set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(results)
    sets = list(results[methods[0]])
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 0.45 * len(methods) + 1.8), squeeze=False)
    for ax, dataset in zip(axes[0], sets, strict=True):
        for offset, metric in ((0.2, "R@1"), (-0.2, "nDCG@10")):
            values = [results[m][dataset][metric] for m in methods]
            ax.barh([i + offset for i in range(len(methods))], values, height=0.4, label=metric)
        ax.set_yticks(range(len(methods)), methods)
        ax.invert_yaxis()
        ax.set_title(dataset)
        ax.legend(loc="lower right")
    fig.suptitle("all-MiniLM-L6-v2 fine-tuned at the same budget")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
