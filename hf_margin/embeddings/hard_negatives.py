"""Hard-negative mining as KaLM-Embedding-V2 and LG-ANNA-Embedding do it, and teacher scores for soft labels.

- KaLM-Embedding-V2 (arXiv 2506.20923, official ``train/hn_mine.py``): retrieve with the current model, drop a
  pair whose positive is not in the top ``consistency_top_k`` (50), sample ``num_negatives`` (7) uniformly
  from ranks ``rank_window`` ([50, 100)), never a positive of the anchor nor the anchor's own text, and pad
  with random corpus texts when the window has too few.
- LG-ANNA-Embedding (arXiv 2506.07438) / NV-Retriever TopK-PercPos: keep the top candidates scoring below
  ``(1 - relative_margin)`` of the positive; this is sentence-transformers' ``mine_hard_negatives`` with
  ``relative_margin``, which this module calls.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from typing import Any, Literal

import torch

from hf_margin._extras import require
from hf_margin._validation import check_choice, check_number_in_range, check_positive_int

logger = logging.getLogger(__name__)

Recipe = Literal["kalm", "lg_anna"]


def mine_hard_negatives(
    dataset: Any,
    model: Any,
    corpus: list[str] | None = None,
    *,
    recipe: Recipe = "kalm",
    num_negatives: int = 7,
    rank_window: tuple[int, int] = (50, 100),
    consistency_top_k: int = 50,
    relative_margin: float = 0.05,
    top_k: int = 30,
    anchor_column: str = "anchor",
    positive_column: str = "positive",
    batch_size: int = 64,
    seed: int = 0,
    show_progress_bar: bool = True,
) -> Any:
    """Add ``negative_1 ... negative_M`` columns to a `datasets.Dataset` of (anchor, positive) pairs.

    Args:
        dataset: a `datasets.Dataset` with the anchor and positive columns.
        model: the SentenceTransformer that retrieves (KaLM: the previous-stage model).
        corpus: texts to draw negatives from (default: the dataset's positives); positives are always added.
        recipe: "kalm" (rank window + ranking-consistency filter) or "lg_anna" (95%-of-positive rule).
        num_negatives: negatives per pair (M).
        rank_window: KaLM's [first, last) rank, 0-based, negatives are sampled from.
        consistency_top_k: KaLM drops a pair whose positive ranks below this.
        relative_margin: LG-ANNA keeps candidates scoring below (1 - relative_margin) x the positive.
        top_k: LG-ANNA's number of retrieved candidates.
        anchor_column, positive_column: the column names.
        batch_size: encoding batch size.
        seed: seed of KaLM's sampling.
        show_progress_bar: progress bars while encoding.

    Returns:
        A new dataset with the anchor, positive and negative columns (KaLM: only the pairs that pass the filter).
    """
    check_choice(recipe, "recipe", ("kalm", "lg_anna"))
    check_positive_int(num_negatives, "num_negatives")
    for column in (anchor_column, positive_column):
        if column not in dataset.column_names:
            raise ValueError(f"`dataset` has no column {column!r}; its columns are {dataset.column_names}")
    if recipe == "lg_anna":
        check_number_in_range(relative_margin, "relative_margin", 0.0, 1.0)
        hard_negatives = require("sentence_transformers.util", "st", "mine_hard_negatives")
        return hard_negatives.mine_hard_negatives(
            dataset.select_columns([anchor_column, positive_column]),
            model,
            anchor_column_name=anchor_column,
            positive_column_name=positive_column,
            corpus=corpus,
            range_max=top_k,
            relative_margin=relative_margin,
            num_negatives=num_negatives,
            sampling_strategy="top",
            output_format="n-tuple",
            batch_size=batch_size,
            verbose=show_progress_bar,
        )
    return _mine_kalm(
        dataset,
        model,
        corpus,
        num_negatives,
        rank_window,
        consistency_top_k,
        anchor_column,
        positive_column,
        batch_size,
        seed,
        show_progress_bar,
    )


def _mine_kalm(
    dataset: Any,
    model: Any,
    corpus: list[str] | None,
    num_negatives: int,
    rank_window: tuple[int, int],
    consistency_top_k: int,
    anchor_column: str,
    positive_column: str,
    batch_size: int,
    seed: int,
    show_progress_bar: bool,
) -> Any:
    first, last = rank_window
    if not 0 <= first < last:
        raise ValueError(f"`rank_window` must be (first, last) with 0 <= first < last, got {rank_window}")
    check_positive_int(consistency_top_k, "consistency_top_k")
    anchors, positives = list(dataset[anchor_column]), list(dataset[positive_column])
    texts = list(dict.fromkeys([*(corpus or []), *positives]))
    if len(texts) < 2:
        raise ValueError(f"the corpus needs at least 2 distinct texts to draw negatives from, got {len(texts)}")
    index = {text: i for i, text in enumerate(texts)}
    positives_of: dict[str, set[int]] = defaultdict(set)
    for anchor, positive in zip(anchors, positives, strict=True):
        positives_of[anchor].add(index[positive])
    unique_anchors = list(positives_of)
    encode = {"batch_size": batch_size, "convert_to_tensor": True, "normalize_embeddings": True}
    anchor_embeddings = model.encode(unique_anchors, show_progress_bar=show_progress_bar, **encode)
    corpus_embeddings = model.encode(texts, show_progress_bar=show_progress_bar, **encode)
    depth = min(max(last, consistency_top_k), len(texts))
    ranked, cutoff = [], []
    for start in range(0, len(unique_anchors), 1024):
        scores = anchor_embeddings[start : start + 1024] @ corpus_embeddings.T
        top = scores.topk(depth, dim=1)
        ranked += top.indices.tolist()
        cutoff += top.values[:, min(consistency_top_k, depth) - 1].tolist()
    row_of = {anchor: i for i, anchor in enumerate(unique_anchors)}
    rng = random.Random(seed)
    rows: dict[str, list[str]] = defaultdict(list)
    dropped = 0
    for anchor, positive in zip(anchors, positives, strict=True):
        row = row_of[anchor]
        positive_score = float(anchor_embeddings[row] @ corpus_embeddings[index[positive]])
        if positive_score < cutoff[row]:
            dropped += 1
            continue
        excluded = positives_of[anchor] | ({index[anchor]} if anchor in index else set())
        window = [i for i in ranked[row][first:last] if i not in excluded]
        chosen = rng.sample(window, min(num_negatives, len(window)))
        while len(chosen) < num_negatives:
            candidate = rng.randrange(len(texts))
            if candidate not in excluded and candidate not in chosen:
                chosen.append(candidate)
        rows[anchor_column].append(anchor)
        rows[positive_column].append(positive)
        for k, i in enumerate(chosen, start=1):
            rows[f"negative_{k}"].append(texts[i])
    logger.info(
        "KaLM mining: dropped %d of %d pairs (positive not in the top %d)", dropped, len(anchors), consistency_top_k
    )
    datasets = require("datasets", "data", "mine_hard_negatives")
    if not rows:
        raise ValueError(f"every pair was dropped: no positive ranks in the top {consistency_top_k}")
    return datasets.Dataset.from_dict(dict(rows))


def add_teacher_scores(
    dataset: Any,
    teacher: Any,
    *,
    anchor_column: str = "anchor",
    candidate_columns: list[str] | None = None,
    column_name: str = "scores",
    batch_size: int = 64,
    show_progress_bar: bool = True,
) -> Any:
    """Add a (1 + M)-list column of teacher scores of each anchor against its positive and negatives.

    The soft labels of :class:`MarginEmbeddingLoss` (``distill_weight > 0``). `teacher` is a SentenceTransformer
    (cosine similarity) or a CrossEncoder (its ``predict`` scores).

    Args:
        dataset: a `datasets.Dataset` with the anchor and candidate columns.
        teacher: the scoring model.
        anchor_column: the anchor column.
        candidate_columns: positive then negatives (default: every column after the anchor).
        column_name: the new column ("scores" is one of the label names sentence-transformers' collator reads).
        batch_size, show_progress_bar: scoring batch size and progress bar.
    """
    columns = candidate_columns or [c for c in dataset.column_names if c != anchor_column]
    missing = [c for c in [anchor_column, *columns] if c not in dataset.column_names]
    if missing:
        raise ValueError(f"`dataset` has no column(s) {missing}; its columns are {dataset.column_names}")
    anchors = list(dataset[anchor_column])
    if hasattr(teacher, "predict"):
        per_column = [
            torch.as_tensor(
                teacher.predict(
                    list(zip(anchors, dataset[c], strict=True)),
                    batch_size=batch_size,
                    show_progress_bar=show_progress_bar,
                )
            ).float()
            for c in columns
        ]
    else:
        encode = {"batch_size": batch_size, "convert_to_tensor": True, "normalize_embeddings": True}
        anchor_embeddings = teacher.encode(anchors, show_progress_bar=show_progress_bar, **encode)
        per_column = [
            (anchor_embeddings * teacher.encode(list(dataset[c]), show_progress_bar=show_progress_bar, **encode))
            .sum(-1)
            .float()
            .cpu()
            for c in columns
        ]
    scores = torch.stack(per_column, dim=1).tolist()
    return dataset.add_column(column_name, scores)
