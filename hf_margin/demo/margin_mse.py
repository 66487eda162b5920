"""Demo entry: Margin-MSE distillation (Hofstaetter et al., arXiv 2010.02666) of a MiniLM cross-encoder teacher
into bi-encoder students, on ICD-10-CM inclusion term -> code description retrieval.

1. ICD-10-CM is split by code (20% held out). Training rows (term, description, 3 hard negatives) are mined with
   the zero-shot all-MiniLM-L6-v2 bi-encoder among the training codes' descriptions (KaLM's rank window).
2. Teacher(s): all-MiniLM-L6-v2 turned into a cross-encoder (new one-output head), fine-tuned on the rows with
   sentence-transformers' CrossEncoderTrainer and its MultipleNegativesRankingLoss; several differently seeded
   teachers are averaged (the paper's T2). Their raw scores of every row's passages are precomputed.
3. Students: all-MiniLM-L6-v2 as a bi-encoder (6 layers) or its first 2 layers, mean pooling, dot score; each
   trained at the same budget on the same rows in the same order with
   - "labels only": in-batch softmax over every passage of the batch (MultipleNegativesRankingLoss with the
     hard negatives, dot score, no teacher),
   - "pointwise MSE": MSE between student and teacher scores,
   - "Margin-MSE": `MarginMSETrainer`.
4. Held-out codes' terms: re-ranking of the zero-shot bi-encoder's top candidates (MRR@10, nDCG@10) by the
   teacher and every student, retrieval over the descriptions by every student, and the time each model takes
   to re-rank the same candidates (the student's speed-up over one teacher).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo.checkpoints import last_checkpoint
from hf_margin.demo.icd_triples import MiningSetup, mined_icd_rows
from hf_margin.demo.petal import cache_dir
from hf_margin.trainers import MarginMSETrainer, MarginMSETrainingArguments
from hf_margin.trainers.margin_mse_trainer import RerankingSet, pool

LABELS_ONLY, POINTWISE, MARGIN_MSE = "labels only", "pointwise MSE", "Margin-MSE"
METHODS = (LABELS_ONLY, POINTWISE, MARGIN_MSE)
STUDENTS = {"MiniLM bi-encoder": 6, "2-layer bi-encoder": 2}


@dataclass(frozen=True)
class DistillationSetup:
    """Budget of the comparison (defaults: the demo's short run; the recipe passes more).

    Args:
        students: which of STUDENTS to train ("MiniLM bi-encoder": 6 layers, "2-layer bi-encoder").
        methods: which of METHODS to train each student with ("labels only", "pointwise MSE", "Margin-MSE").
        teachers: differently seeded cross-encoder teachers, averaged (the paper's T2 averages three).
        teacher_steps, teacher_batch_size, teacher_learning_rate: each teacher's fine-tuning budget.
        teacher_in_batch_negatives: other rows' positives each teacher also scores per query (besides the hard
            negatives; at least 1; each costs one more forward pass of the batch).
        steps, batch_size, learning_rate: each student's budget (AdamW, linear decay after 10% warm-up).
        num_negatives: mined hard negatives per row.
        rerank_queries: held-out terms evaluated (0: all).
        rerank_depth: candidates per query for re-ranking (the zero-shot bi-encoder's top ones).
        full_corpus: retrieve and take candidates among every ICD description (else the held-out codes' only).
        max_length: token budget of a text or a query + passage pair.
        seed: seed of the split, the rows, the teachers (seed + i) and the students.

    The teachers train on all mined rows (enough for either budget); the students on the first
    `steps x batch_size` of them, scored by the teachers.
    """

    students: tuple[str, ...] = ("2-layer bi-encoder",)
    methods: tuple[str, ...] = (LABELS_ONLY, MARGIN_MSE)
    teachers: int = 1
    teacher_steps: int = 100
    teacher_batch_size: int = 16
    teacher_learning_rate: float = 5e-5
    teacher_in_batch_negatives: int = 1
    steps: int = 40
    batch_size: int = 16
    learning_rate: float = 5e-5
    num_negatives: int = 3
    rerank_queries: int = 50
    rerank_depth: int = 10
    full_corpus: bool = False
    max_length: int = 64
    seed: int = 0


class LabelsOnlyTrainer(MarginMSETrainer):
    """The labels-only baseline: softmax over every passage of the batch, the row's own positive as the target
    (MultipleNegativesRankingLoss with hard negatives on the student's dot score); teacher scores are unused."""

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        scores = self.student_scores(model, inputs, in_batch=True)
        target = torch.arange(scores.shape[0], device=scores.device) * len(inputs["passages"][0])
        loss = F.cross_entropy(scores, target)
        return (loss, {"scores": scores}) if return_outputs else loss


class PointwiseMSETrainer(MarginMSETrainer):
    """The pointwise distillation baseline: MSE between each student score and the teacher's score."""

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        scores = self.student_scores(model, inputs)
        loss = F.mse_loss(scores, inputs["teacher_scores"].to(scores.device))
        return (loss, {"scores": scores}) if return_outputs else loss


TRAINERS: dict[str, type[MarginMSETrainer]] = {
    LABELS_ONLY: LabelsOnlyTrainer,
    POINTWISE: PointwiseMSETrainer,
    MARGIN_MSE: MarginMSETrainer,
}


def _arguments(out_dir: Path, setup: DistillationSetup, student_type: str, **kwargs: Any) -> MarginMSETrainingArguments:
    options: dict[str, Any] = {
        "per_device_train_batch_size": setup.batch_size,
        "max_steps": setup.steps,
        "learning_rate": setup.learning_rate,
        "warmup_steps": max(1, setup.steps // 10),
        "seed": setup.seed,
        "data_seed": setup.seed,
        "report_to": "none",
        "save_strategy": "no",
        "disable_tqdm": True,
        "logging_steps": max(1, setup.steps // 5),
        "use_cpu": not torch.cuda.is_available(),
        "student_type": student_type,
        "query_column": "anchor",
        "max_length": setup.max_length,
    }
    return MarginMSETrainingArguments(str(out_dir), **(options | kwargs))


def teacher_training(setup: DistillationSetup) -> tuple[object, ...]:
    """One teacher's training budget (part of its cache name): steps, batch size, learning rate, in-batch
    negatives and token budget."""
    return (
        setup.teacher_steps,
        setup.teacher_batch_size,
        setup.teacher_learning_rate,
        setup.teacher_in_batch_negatives,
        setup.max_length,
    )


def train_teachers(rows: Any, setup: DistillationSetup, out_dir: Path) -> list[Any]:
    """`setup.teachers` differently seeded MiniLM cross-encoders fine-tuned on the rows (`train_teacher`); each is
    cached under the demo cache folder, keyed by its budget, so later runs load it."""
    from sentence_transformers.cross_encoder import CrossEncoder

    teachers = []
    for index in range(setup.teachers):
        seed = setup.seed + index
        budget = (len(rows), *teacher_training(setup), seed)
        folder = cache_dir() / ("icd_cross_encoder_" + "_".join(map(str, budget)))
        if (folder / "config.json").is_file():
            teachers.append(CrossEncoder(str(folder), device="cpu"))
            continue
        teacher = train_teacher(rows, setup, seed, out_dir / f"teacher_{index}")
        teacher.save_pretrained(str(folder))
        teachers.append(teacher)
    return teachers


def train_teacher(
    rows: Any,
    setup: DistillationSetup,
    seed: int,
    output_dir: Path,
    callbacks: Sequence[Any] = (),
    checkpoint_every: int = 0,
) -> Any:
    """One MiniLM cross-encoder (a new one-output head, seeded by `seed`) fine-tuned on the rows for
    `setup.teacher_steps` steps with sentence-transformers' CrossEncoderTrainer and its MultipleNegativesRankingLoss
    over the hard negatives (and `teacher_in_batch_negatives` other rows' positives); `callbacks` are transformers
    `TrainerCallback`s given to the trainer (e.g. one that stops training early). With `checkpoint_every` > 0 a
    checkpoint is saved in `output_dir` every that many steps (the last one kept), and a training interrupted there
    resumes from its last checkpoint."""
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss
    from transformers import set_seed

    from hf_margin.demo.data.pretrained import minilm_path

    set_seed(seed)  # the new head's initialisation
    teacher = CrossEncoder(minilm_path(), num_labels=1, max_length=setup.max_length, device="cpu")
    args = CrossEncoderTrainingArguments(
        output_dir=str(output_dir),
        max_steps=setup.teacher_steps,
        per_device_train_batch_size=setup.teacher_batch_size,
        learning_rate=setup.teacher_learning_rate,
        warmup_steps=max(1, setup.teacher_steps // 10),
        seed=seed,
        data_seed=seed,
        report_to="none",
        save_strategy="steps" if checkpoint_every else "no",
        save_steps=checkpoint_every or setup.teacher_steps,
        save_total_limit=1,
        logging_steps=max(1, setup.teacher_steps // 5),
        disable_tqdm=True,
    )
    loss = MultipleNegativesRankingLoss(teacher, num_negatives=setup.teacher_in_batch_negatives)
    trainer = CrossEncoderTrainer(model=teacher, args=args, train_dataset=rows, loss=loss, callbacks=list(callbacks))
    # a checkpoint saved where a callback ended the training resumes normally: the Trainer does not restore the
    # control state unless `restore_callback_states_from_checkpoint` is set (tested)
    resume = last_checkpoint(output_dir) if checkpoint_every else None
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return teacher


def student(layers: int) -> Any:
    """all-MiniLM-L6-v2's first `layers` transformer layers as a bi-encoder (an `AutoModel`)."""
    from transformers import AutoModel

    from hf_margin.demo.data.pretrained import minilm_path

    return AutoModel.from_pretrained(minilm_path(), num_hidden_layers=layers)


@torch.no_grad()
def embed(model: Any, tokenizer: Any, texts: list[str], max_length: int, batch_size: int = 256) -> Tensor:
    """Mean-pooled embeddings of `texts` (the students' pooling)."""
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(
            texts[start : start + batch_size], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        ).to(device)
        chunks.append(pool(model(**encoded).last_hidden_state, encoded["attention_mask"], "mean").cpu())
    return torch.cat(chunks)


def retrieval(
    model: Any,
    tokenizer: Any,
    queries: list[str],
    relevant: list[set[int]],
    corpus: list[str],
    max_length: int,
    k: int = 10,
) -> dict[str, float]:
    """MRR@k, nDCG@k, R@1 and R@k of dot-score retrieval over `corpus` (relevant: corpus indices per query)."""
    from hf_margin.metrics.ranking import ranking_metrics

    scores = embed(model, tokenizer, queries, max_length) @ embed(model, tokenizer, corpus, max_length).T
    top = scores.topk(min(k, len(corpus)), dim=1).indices.tolist()
    ranked = [[i in wanted for i in row] for row, wanted in zip(top, relevant, strict=True)]
    return ranking_metrics(ranked, [len(wanted) for wanted in relevant], k)


@dataclass(frozen=True)
class HeldOut:
    """The evaluation data: re-ranking candidates from the zero-shot bi-encoder, and retrieval over a corpus.

    Attributes:
        reranking: the held-out terms with the zero-shot model's top candidates (relevant: candidate positions).
        queries, relevant, corpus: the same terms for retrieval (relevant: corpus positions).
        zero_shot: the zero-shot model's own metrics (its candidate order, cosine retrieval).
    """

    reranking: RerankingSet
    queries: list[str]
    relevant: list[set[int]]
    corpus: list[str]
    zero_shot: dict[str, float]


def held_out(data: Any, zero_shot: Any, setup: DistillationSetup, k: int = 10) -> HeldOut:
    """Sampled held-out terms, their relevant descriptions and their zero-shot top candidates."""
    from hf_margin.metrics.ranking import ranking_metrics

    test = data.test.sample(setup.rerank_queries, setup.seed) if setup.rerank_queries else data.test
    corpus = data.test.corpus if setup.full_corpus else sorted(set().union(*data.test.relevant))
    position = {text: i for i, text in enumerate(corpus)}
    relevant = [{position[text] for text in wanted} for wanted in test.relevant]
    encode = {"batch_size": 256, "convert_to_tensor": True, "normalize_embeddings": True, "show_progress_bar": False}
    scores = zero_shot.encode(test.queries, **encode) @ zero_shot.encode(corpus, **encode).T
    top = scores.topk(max(setup.rerank_depth, k), dim=1).indices.cpu().tolist()
    ranked = [[i in wanted for i in row] for row, wanted in zip(top, relevant, strict=True)]
    candidates_ranked = [row[: setup.rerank_depth] for row in ranked]
    hits = [{rank for rank, hit in enumerate(row) if hit} for row in candidates_ranked]
    metrics = {
        **_prefixed("rerank", ranking_metrics(candidates_ranked, [len(h) for h in hits], k)),
        **_prefixed("retrieval", ranking_metrics(ranked, [len(wanted) for wanted in relevant], k)),
    }
    candidates = [[corpus[i] for i in row[: setup.rerank_depth]] for row in top]
    return HeldOut(RerankingSet(test.queries, candidates, hits), test.queries, relevant, corpus, metrics)


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix} {name}": value for name, value in metrics.items()}


def _rerank_timed(trainer: MarginMSETrainer, data: RerankingSet) -> tuple[dict[str, float], float]:
    start = time.perf_counter()
    metrics = _prefixed("rerank", trainer.rerank(data))
    return metrics, time.perf_counter() - start


def rerank_with_teacher(
    teacher: Any, tokenizer: Any, data: RerankingSet, setup: DistillationSetup, out_dir: Path
) -> tuple[dict[str, float], float]:
    """The cross-encoder `teacher`'s re-ranking metrics on `data` ("rerank MRR@10", ...) and the seconds it took."""
    judge = MarginMSETrainer(
        teacher, _arguments(out_dir / "teacher", setup, "cross-encoder"), processing_class=tokenizer
    )
    return _rerank_timed(judge, data)


def train_student(
    name: str, method: str, rows: Any, tokenizer: Any, setup: DistillationSetup, output_dir: Path
) -> MarginMSETrainer:
    """The student `name` (of STUDENTS) trained with `method` (of METHODS) on the teacher-scored rows, in their order,
    for `setup.steps` steps (seeded by `setup.seed`); returns its trainer, which holds the trained model."""
    args = _arguments(output_dir, setup, "bi-encoder")
    trainer = TRAINERS[method](student(STUDENTS[name]), args, train_dataset=rows, processing_class=tokenizer)
    trainer.train()
    return trainer


def evaluate_student(
    trainer: MarginMSETrainer, evaluation: HeldOut, setup: DistillationSetup
) -> tuple[dict[str, float], float]:
    """A trained student's re-ranking ("rerank ...") and retrieval ("retrieval ...") metrics on the held-out terms,
    and the seconds its re-ranking took."""
    metrics, seconds = _rerank_timed(trainer, evaluation.reranking)
    model, tokenizer = trainer.model, trainer.processing_class
    found = retrieval(model, tokenizer, evaluation.queries, evaluation.relevant, evaluation.corpus, setup.max_length)
    return metrics | _prefixed("retrieval", found), seconds


def run(context: DemoContext, setup: DistillationSetup = DistillationSetup()) -> list[DemoRow]:
    from sentence_transformers import SentenceTransformer

    from hf_margin.data.teacher_scoring import score_with_teachers
    from hf_margin.demo.data.pretrained import minilm_path
    from hf_margin.demo.data.retrieval import icd10_retrieval

    unknown = [m for m in setup.methods if m not in METHODS] + [s for s in setup.students if s not in STUDENTS]
    if unknown:
        raise ValueError(f"unknown method(s) or student(s) {unknown}; known: {', '.join(METHODS + tuple(STUDENTS))}")
    torch.manual_seed(setup.seed)
    data = icd10_retrieval(seed=setup.seed)
    zero_shot = SentenceTransformer(minilm_path(), device="cpu").eval()
    mining = MiningSetup(
        max(setup.steps * setup.batch_size, setup.teacher_steps * setup.teacher_batch_size),
        setup.num_negatives,
        seed=setup.seed,
    )
    passages = ["positive"] + [f"negative_{i}" for i in range(1, setup.num_negatives + 1)]
    rows = mined_icd_rows(mining, data.train_pairs, data.train_corpus, zero_shot).select_columns(["anchor", *passages])
    evaluation = held_out(data, zero_shot, setup)
    results: dict[str, dict[str, float]] = {"zero-shot": evaluation.zero_shot}

    start = time.perf_counter()
    teachers = [(t.model.eval(), t.tokenizer) for t in train_teachers(rows, setup, context.out_dir)]
    # The teacher scores are cached; the rows' fingerprint (what the cache checks) is named after everything they
    # depend on, since an in-memory dataset's own fingerprint is random.
    rows_used = setup.steps * setup.batch_size
    depends = (setup.teachers, *teacher_training(setup), setup.seed, rows_used, setup.num_negatives)
    key = "icd_teacher_scores_" + "_".join(map(str, depends)).replace(".", "p")
    student_rows = rows.select(range(min(len(rows), rows_used)), new_fingerprint=key)
    scored = score_with_teachers(
        student_rows,
        teachers,
        query_column="anchor",
        max_length=setup.max_length,
        cache_file=cache_dir() / f"{key}.json",
        progress=False,
    )
    timings = {"teacher": time.perf_counter() - start}
    teacher, tokenizer = teachers[0]
    results["teacher"], teacher_seconds = rerank_with_teacher(
        teacher, tokenizer, evaluation.reranking, setup, context.out_dir
    )
    speed: dict[str, float] = {}
    for name in context.progress(setup.students, desc="Margin-MSE demo", unit="student", leave=False):
        for method in setup.methods:
            key = f"{name}: {method}"
            start = time.perf_counter()
            folder = context.out_dir / "runs" / key.replace(" ", "_").replace(":", "")
            trainer = train_student(name, method, scored, tokenizer, setup, folder)
            timings[key] = time.perf_counter() - start
            results[key], seconds = evaluate_student(trainer, evaluation, setup)
            speed[name] = teacher_seconds / seconds
    report = {
        "setup": asdict(setup),
        "training_rows": len(scored),
        "results": results,
        "seconds": timings,
        "teacher_rerank_seconds": teacher_seconds,
        "speed_up_over_one_teacher": speed,
    }
    (context.out_dir / "margin_mse.json").write_text(json.dumps(report, indent=2))
    return rows_from_results(results, timings, speed)


def rows_from_results(
    results: dict[str, dict[str, float]], timings: dict[str, float], speed: dict[str, float]
) -> list[DemoRow]:
    """The teacher against the zero-shot ranking; each distilled student against the same student trained on
    labels only (or, for labels only, against the zero-shot model); each student's re-ranking speed-up."""
    dataset = "ICD-10-CM held-out codes"
    rows = [
        DemoRow(
            "margin_mse",
            "teacher (cross-encoder)",
            "zero-shot",
            metric,
            results["teacher"][metric],
            results["zero-shot"][metric],
            timings["teacher"],
            dataset,
        )
        for metric in ("rerank MRR@10", "rerank nDCG@10")
    ]
    for key, metrics in results.items():
        if key in ("zero-shot", "teacher"):
            continue
        name, method = key.split(": ")
        labels_only = f"{name}: {LABELS_ONLY}"
        baseline = labels_only if method != LABELS_ONLY and labels_only in results else "zero-shot"
        for metric in ("rerank MRR@10", "rerank nDCG@10", "retrieval MRR@10", "retrieval nDCG@10"):
            rows.append(
                DemoRow(
                    "margin_mse",
                    key,
                    baseline,
                    metric,
                    metrics[metric],
                    results[baseline][metric],
                    timings[key],
                    dataset,
                )
            )
    for name, ratio in speed.items():
        rows.append(DemoRow("margin_mse", name, "one teacher", "re-ranking speed-up", ratio, 1.0, 0.0, dataset))
    return rows
