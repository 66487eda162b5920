"""Teacher scores for Margin-MSE: cross-encoders score every (query, passage) of a row; several teachers'
raw scores are combined per pair (the paper's T2: the mean of three). Used on the fly by `MarginMSETrainer`,
or ahead of training, resumably, by :func:`score_with_teachers` (and `hf-margin score-teachers`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hf_margin.data.batch_scoring import score_in_batches, scorer_identity
from hf_margin.functional.margin_mse import aggregate_teachers


@torch.no_grad()
def cross_encoder_scores(
    teachers: list[tuple[Any, Any]],
    queries: list[str],
    passages: list[list[str]],
    max_length: int = 256,
    aggregation: str = "mean",
) -> Tensor:
    """(len(queries), passages per query) scores: each teacher's single logit per pair, then aggregated.

    Args:
        teachers: (cross-encoder with one output, its tokenizer) pairs.
        queries: one query per row.
        passages: each row's passages (positive first), the same number per row.
        max_length: token budget of a query + passage pair.
        aggregation: "mean", "median", "max" or "min" over the teachers.
    """
    repeated = [q for q, group in zip(queries, passages, strict=True) for _ in group]
    flat = [p for group in passages for p in group]
    scores = []
    for teacher, tokenizer in teachers:
        encoded = tokenizer(repeated, flat, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        logits = teacher(**encoded.to(next(teacher.parameters()).device)).logits.float()
        if logits.shape[-1] != 1:
            raise ValueError(f"a teacher must be a cross-encoder with one output, got {logits.shape[-1]} outputs")
        scores.append(logits.view(len(queries), -1).cpu())
    return aggregate_teachers(scores, aggregation)


def score_with_teachers(
    dataset: Any,
    teachers: list[tuple[Any, Any]],
    query_column: str = "query",
    passage_columns: list[str] | None = None,
    teacher_column: str = "teacher_scores",
    aggregation: str = "mean",
    batch_size: int = 32,
    max_length: int = 256,
    cache_file: str | Path | None = None,
    progress: bool = True,
) -> Any:
    """The `datasets.Dataset` with a `teacher_column` of (1 + negatives) aggregated teacher scores per row.

    Args:
        dataset: rows with a query column and passage columns (positive first).
        teachers: (cross-encoder, tokenizer) pairs; put each on its device first.
        query_column, passage_columns: the columns (default passages: every column but the query and teacher ones).
        teacher_column: the new column's name (replaced if present).
        aggregation: how the teachers combine ("mean" is the paper's T2).
        batch_size, max_length: rows per scoring call and the token budget of a pair.
        cache_file: keep finished batches here so that an interrupted run resumes (None: no caching). A cache made
            for other data, teachers (weights or tokenizers), columns, aggregation or `max_length` raises a
            ValueError naming what differs.
        progress: show a progress bar.
    """
    columns = passage_columns or [c for c in dataset.column_names if c not in (query_column, teacher_column)]
    missing = [c for c in [query_column, *columns] if c not in dataset.column_names]
    if missing or len(columns) < 2:
        raise ValueError(f"need a {query_column!r} column and >= 2 passage columns; missing {missing}, got {columns}")
    for teacher, _ in teachers:
        teacher.eval()

    def score(rows: dict[str, list[Any]]) -> list[list[float]]:
        passages = [list(group) for group in zip(*(rows[c] for c in columns), strict=True)]
        return cross_encoder_scores(teachers, rows[query_column], passages, max_length, aggregation).tolist()

    setup = {
        "teachers": [scorer_identity(teacher, tokenizer) for teacher, tokenizer in teachers],
        "columns": [query_column, *columns],
        "aggregation": aggregation,
        "max_length": max_length,
    }
    scores = score_in_batches(dataset, score, batch_size, cache_file, "scoring with teachers", progress, setup)
    if teacher_column in dataset.column_names:
        dataset = dataset.remove_columns(teacher_column)
    return dataset.add_column(teacher_column, scores)
