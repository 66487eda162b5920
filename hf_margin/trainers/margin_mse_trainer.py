"""`MarginMSETrainer`: Margin-MSE distillation of a ranker with the plain transformers `Trainer`.

Hofstaetter et al., "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation"
(arXiv 2010.02666). sentence-transformers has `MarginMSELoss` for its own trainer; this is the same loss for
cross-encoder or bi-encoder students trained with `Trainer` (tested to agree numerically).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import Trainer

from hf_margin.data.teacher_scoring import cross_encoder_scores
from hf_margin.functional.margin_mse import margin_mse_loss
from hf_margin.metrics.ranking import ranking_metrics
from hf_margin.model_cards import base_model_name
from hf_margin.trainers._columns import ColumnCheck, check_dataset_columns
from hf_margin.trainers._model_card import ModelCardMixin, training_hyperparameters
from hf_margin.trainers.margin_mse_config import MarginMSETrainingArguments


class MarginMSECollator:
    """Tokenises (query, passage_1 .. passage_{1+N}) rows for a cross-encoder or a bi-encoder student.

    The batch keeps the texts (for teachers scoring on the fly) and the teacher-score column, if any.
    """

    def __init__(self, tokenizer: Any, args: MarginMSETrainingArguments, passage_columns: list[str]) -> None:
        self.tokenizer, self.args, self.passage_columns = tokenizer, args, passage_columns

    def _tokenize(self, *texts: list[str]) -> dict[str, Tensor]:
        return dict(
            self.tokenizer(*texts, truncation=True, max_length=self.args.max_length, padding=True, return_tensors="pt")
        )

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        missing = [c for c in [self.args.query_column, *self.passage_columns] if c not in rows[0]]
        if missing:
            raise ValueError(f"the rows have no column(s) {missing}; they have {sorted(rows[0])}")
        queries = [row[self.args.query_column] for row in rows]
        passages = [[row[c] for c in self.passage_columns] for row in rows]  # (batch, 1 + N), query-major
        flat = [p for group in passages for p in group]
        batch: dict[str, Any] = {"queries": queries, "passages": passages}
        if self.args.student_type == "cross-encoder":
            repeated = [q for q in queries for _ in self.passage_columns]
            batch["pair_inputs"] = self._tokenize(repeated, flat)
        else:
            batch["query_inputs"] = self._tokenize(queries)
            batch["passage_inputs"] = self._tokenize(flat)
        if self.args.teacher_column in rows[0]:
            batch["teacher_scores"] = torch.tensor([row[self.args.teacher_column] for row in rows], dtype=torch.float)
        return batch


def pool(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    """(batch, hidden) sentence vectors: the first token (`"cls"`) or the mean over unmasked tokens (`"mean"`)."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


@dataclass(frozen=True)
class RerankingSet:
    """A re-ranking dev set: each query's candidate passages (the same number per query) and which are relevant.

    Attributes:
        queries: the queries.
        candidates: per query, its candidate passages.
        relevant: per query, the indices of its relevant candidates.
    """

    queries: list[str]
    candidates: list[list[str]]
    relevant: list[set[int]]


def _positive_first(rows: int, group: int, device: torch.device) -> Tensor:
    """(rows, rows x group) column order putting row i's own positive (column i x group) first."""
    columns = torch.arange(rows * group, device=device).expand(rows, -1)
    own = torch.arange(rows, device=device).unsqueeze(1) * group
    others = columns[columns != own].view(rows, -1)
    return torch.cat([own, others], dim=1)


class MarginMSETrainer(ModelCardMixin, Trainer):
    """`Trainer` that distils teacher score margins into a cross-encoder or bi-encoder student.

    Rows: a query column, passage columns (positive first, then any number of negatives), and either a
    teacher-score column with 1 + N scores per row or ``teachers=`` cross-encoders that score each batch on the
    fly (their raw scores combined by ``args.teacher_aggregation``; the paper's T2 is the mean of three).

    Args:
        model: the student.
        args: `MarginMSETrainingArguments`.
        processing_class: the student's tokenizer.
        teachers: optional list of (cross-encoder model, tokenizer) pairs scoring on the fly.
        reranking: a `RerankingSet`: every evaluation also re-ranks it with the student and logs MRR@10,
            nDCG@10, R@1 and R@10 (``eval_rerank_*``).
        **kwargs: everything else `Trainer` takes.

    The columns of `train_dataset` and `eval_dataset` (texts; finite teacher scores, one per passage) are checked
    when the trainer is built (`hf_margin.trainers._columns`), so a bad row is reported before training starts.

    Saving (`save_model`, checkpoints, `push_to_hub`) writes the filled `margin_mse_ranker` model card as README.md
    (`hf_margin.trainers._model_card`).

    Example:
        >>> args = MarginMSETrainingArguments("out", student_type="bi-encoder", similarity="dot")
        >>> MarginMSETrainer(student, args, train_dataset=triples, processing_class=tokenizer).train()
    """

    args: MarginMSETrainingArguments
    card_template = "margin_mse_ranker"

    def __init__(
        self,
        model: nn.Module,
        args: MarginMSETrainingArguments,
        processing_class: Any = None,
        teachers: list[tuple[nn.Module, Any]] | None = None,
        reranking: RerankingSet | None = None,
        data_collator: Any = None,
        train_dataset: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(args, MarginMSETrainingArguments):
            raise TypeError(f"`args` must be MarginMSETrainingArguments, got {type(args).__name__}")
        if processing_class is None:
            raise ValueError("`processing_class` must be the student's tokenizer (the rows hold texts)")
        self.teachers = list(teachers or [])
        self.reranking = reranking
        if args.in_batch_margins and (args.student_type != "bi-encoder" or not self.teachers):
            raise ValueError(
                "in_batch_margins needs student_type='bi-encoder' and on-the-fly `teachers` (they score "
                "every query against every passage of the batch)"
            )
        for teacher, _ in self.teachers:
            teacher.eval().requires_grad_(False)
        if train_dataset is not None and data_collator is None:
            passage_columns = self.passage_columns(train_dataset.column_names, args)
            if not self.teachers and args.teacher_column not in train_dataset.column_names:
                raise ValueError(
                    f"no teacher scores: the dataset has no {args.teacher_column!r} column and no `teachers` were "
                    f"given (columns: {train_dataset.column_names})"
                )
            data_collator = MarginMSECollator(processing_class, args, passage_columns)
            checks = self.column_checks(passage_columns, args)
            check_dataset_columns(train_dataset, "MarginMSETrainer", checks)
            check_dataset_columns(kwargs.get("eval_dataset"), "MarginMSETrainer", checks, "eval_dataset")
        super().__init__(
            model=model,
            args=args,
            processing_class=processing_class,
            data_collator=data_collator,
            train_dataset=train_dataset,
            **kwargs,
        )
        # The loss is a per-batch mean: let the Trainer divide it by the accumulation steps.
        self.model_accepts_loss_kwargs = False

    @staticmethod
    def passage_columns(columns: list[str], args: MarginMSETrainingArguments) -> list[str]:
        """The passage columns: `args.passage_columns`, or every column but the query and teacher ones."""
        chosen = args.passage_columns or [c for c in columns if c not in (args.query_column, args.teacher_column)]
        if len(chosen) < 2:
            raise ValueError(f"Margin-MSE needs a positive and at least one negative passage column, got {chosen}")
        return chosen

    def column_checks(self, passage_columns: list[str], args: MarginMSETrainingArguments) -> list[ColumnCheck]:
        """What the rows must hold: texts in the query and passage columns and, without on-the-fly teachers, one
        finite teacher score per passage."""
        checks = [ColumnCheck(column, "text") for column in [args.query_column, *passage_columns]]
        if not self.teachers:
            width = len(passage_columns)
            checks.append(ColumnCheck(args.teacher_column, "numbers", width, "one per passage column"))
        return checks

    def card_values(self) -> dict[str, Any]:
        """The `margin_mse_ranker` card's fields: the student, its teachers and the Margin-MSE options."""
        args, cross = self.args, self.args.student_type == "cross-encoder"
        columns = getattr(self.train_dataset, "column_names", None)
        teachers = ", ".join(f"`{base_model_name(teacher)}`" for teacher, _ in self.teachers)
        return {
            "pipeline_tag": "text-classification" if cross else "feature-extraction",
            "student_type": args.student_type,
            "pooling": args.pooling,
            "similarity": args.similarity,
            "teachers": teachers or f"Scores precomputed in the data's `{args.teacher_column}` column",
            "aggregation": f"several teachers' scores combined by their {args.teacher_aggregation}"
            if len(self.teachers) > 1
            else "one score per query-passage pair",
            "usage": "`AutoModelForSequenceClassification`: the score of a (query, passage) pair is its one logit"
            if cross
            else f"`AutoModel`: {args.pooling} pooling of each text's tokens, then the {args.similarity} "
            "score of the query and passage vectors",
            "num_negatives": len(self.passage_columns(columns, args)) - 1 if columns else "several",
            "hyperparameters": {
                "max_length": args.max_length,
                "in_batch_margins": args.in_batch_margins,
                **training_hyperparameters(args, self.state.global_step),
            },
        }

    def student_scores(self, model: nn.Module, inputs: dict[str, Any], in_batch: bool = False) -> Tensor:
        """(batch, 1 + N) student scores of each row's passages, or (batch, batch x (1 + N)) against all of the
        batch's passages (row-major) with `in_batch`."""
        groups = len(inputs["passages"][0])
        if self.args.student_type == "cross-encoder":
            logits = model(**inputs["pair_inputs"]).logits
            if logits.shape[-1] != 1:
                raise ValueError(f"a cross-encoder student needs one output (num_labels=1), got {logits.shape[-1]}")
            return logits.view(-1, groups)
        query_inputs, passage_inputs = inputs["query_inputs"], inputs["passage_inputs"]
        queries = pool(model(**query_inputs).last_hidden_state, query_inputs["attention_mask"], self.args.pooling)
        passages = pool(
            model(**passage_inputs).last_hidden_state, passage_inputs["attention_mask"], self.args.pooling
        ).view(queries.shape[0], groups, -1)
        if self.args.similarity == "cosine":
            queries, passages = F.normalize(queries, dim=-1), F.normalize(passages, dim=-1)
        if in_batch:
            return queries @ passages.flatten(0, 1).T
        return torch.einsum("bd,bkd->bk", queries, passages)

    def teacher_scores(self, inputs: dict[str, Any]) -> Tensor:
        """(batch, 1 + N) scores of the on-the-fly teachers, combined by `args.teacher_aggregation`."""
        return cross_encoder_scores(
            self.teachers, inputs["queries"], inputs["passages"], self.args.max_length, self.args.teacher_aggregation
        )

    @torch.no_grad()
    def rerank(self, data: RerankingSet, batch_size: int = 16, k: int = 10) -> dict[str, float]:
        """Score every query's candidates with the student and return MRR@k, nDCG@k, R@1 and R@k."""
        width = len(data.candidates[0])
        columns = [f"candidate_{i}" for i in range(width)]
        collator = MarginMSECollator(self.processing_class, self.args, columns)
        model: Any = self.model
        was_training = model.training
        model.eval()
        ranked = []
        for start in range(0, len(data.queries), batch_size):
            rows = [
                {self.args.query_column: q, **dict(zip(columns, group, strict=True))}
                for q, group in zip(
                    data.queries[start : start + batch_size], data.candidates[start : start + batch_size], strict=True
                )
            ]
            scores = self.student_scores(model, self._prepare_inputs(collator(rows)))
            for order, relevant in zip(
                scores.argsort(dim=1, descending=True).tolist(), data.relevant[start : start + batch_size], strict=True
            ):
                ranked.append([i in relevant for i in order])
        model.train(was_training)
        return ranking_metrics(ranked, [len(r) for r in data.relevant], k)

    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval") -> Any:
        """The Trainer's evaluation (Margin-MSE on `eval_dataset`), plus the re-ranking metrics if configured."""
        has_data = eval_dataset is not None or self.eval_dataset is not None
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix) if has_data else {}
        if self.reranking is not None:
            extra = {f"{metric_key_prefix}_rerank_{name}": value for name, value in self.rerank(self.reranking).items()}
            self.log(extra)
            metrics.update(extra)
        return metrics

    def prediction_step(
        self, model: nn.Module, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys: Any = None
    ) -> tuple[Tensor, None, None]:
        """Evaluation: the Margin-MSE loss of the batch (the rows hold texts, not model inputs)."""
        with torch.no_grad():
            loss = self.compute_loss(model, self._prepare_inputs(inputs))
        assert isinstance(loss, Tensor)
        return loss.detach(), None, None

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        if self.args.in_batch_margins:
            student = self.student_scores(model, inputs, in_batch=True)
            everything = [p for group in inputs["passages"] for p in group]
            queries = inputs["queries"]
            teacher = cross_encoder_scores(
                self.teachers, queries, [everything] * len(queries), self.args.max_length, self.args.teacher_aggregation
            )
            order = _positive_first(len(inputs["queries"]), len(inputs["passages"][0]), student.device)
            student, teacher = student.gather(1, order), teacher.to(student.device).gather(1, order)
        else:
            student = self.student_scores(model, inputs)
            teacher = self.teacher_scores(inputs) if self.teachers else inputs["teacher_scores"]
        loss = margin_mse_loss(student, teacher.to(student.device))
        return (loss, {"scores": student}) if return_outputs else loss
