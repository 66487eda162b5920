"""Evidence 5's fallback teacher: the trained cross-encoder and the zero-shot bi-encoder as one ensemble.

The Margin-MSE paper (Hofstaetter et al., arXiv:2010.02666) distils from single cross-encoders and from an ensemble of
teachers of different architectures (its T2, the mean of three teachers' scores). Here the two members' scores live on
different scales (a cross-encoder's logit, a bi-encoder's cosine), so each is standardised over all the pairs scored
together (mean 0, standard deviation 1), the two are summed, and the sum is standardised again and put on the
cross-encoder's scale (its mean and standard deviation over the same pairs), so that the score margins the students
learn have the spread a cross-encoder teacher alone would give them. Within a query the ensemble ranks by
``cross / std(cross) + cosine / std(cosine)``, the spreads being those of the set scored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hf_margin.metrics.ranking import ranking_metrics


def standardised(scores: Tensor) -> Tensor:
    """`scores` shifted and scaled to mean 0 and standard deviation 1 over all their entries (constant scores: 0)."""
    return (scores - scores.mean()) / scores.std().clamp_min(1e-12)


def ensemble_scores(cross: Tensor, bi: Tensor) -> Tensor:
    """The ensemble's scores of the same pairs (any shape, the same for both): the sum of the two members'
    standardised scores, standardised again and put on the cross-encoder's mean and standard deviation."""
    if cross.shape != bi.shape:
        raise ValueError(
            f"`cross` and `bi` must score the same pairs, got shapes {tuple(cross.shape)} and {tuple(bi.shape)}"
        )
    return cross.mean() + cross.std() * standardised(standardised(cross) + standardised(bi))


@torch.no_grad()
def bi_encoder_scores(zero_shot: Any, queries: list[str], passages: list[list[str]]) -> Tensor:
    """(len(queries), passages per query) cosine similarities from the `zero_shot` SentenceTransformer."""
    encode = {"batch_size": 256, "convert_to_tensor": True, "normalize_embeddings": True, "show_progress_bar": False}
    texts = sorted({p for group in passages for p in group})
    position = {text: i for i, text in enumerate(texts)}
    passage_embeddings = zero_shot.encode(texts, **encode).cpu()
    query_embeddings = zero_shot.encode(queries, **encode).cpu()
    index = torch.tensor([[position[p] for p in group] for group in passages])
    return torch.einsum("qd,qpd->qp", query_embeddings, passage_embeddings[index])


@torch.no_grad()
def cross_scores(teacher: Any, queries: list[str], passages: list[list[str]], max_length: int) -> Tensor:
    """(len(queries), passages per query) logits of the `teacher` CrossEncoder, 32 queries per call."""
    from hf_margin.data.teacher_scoring import cross_encoder_scores

    model = teacher.model.eval()
    chunks = [
        cross_encoder_scores(
            [(model, teacher.tokenizer)], queries[start : start + 32], passages[start : start + 32], max_length
        )
        for start in range(0, len(queries), 32)
    ]
    return torch.cat(chunks)


def ensemble_rerank(teacher: Any, zero_shot: Any, data: Any, max_length: int, k: int = 10) -> dict[str, float]:
    """The ensemble's re-ranking metrics of a `RerankingSet` ("rerank MRR@10", "rerank nDCG@10", ...)."""
    scores = ensemble_scores(
        cross_scores(teacher, data.queries, data.candidates, max_length),
        bi_encoder_scores(zero_shot, data.queries, data.candidates),
    )
    order = scores.argsort(dim=1, descending=True).tolist()
    ranked = [[i in relevant for i in row] for row, relevant in zip(order, data.relevant, strict=True)]
    found = ranking_metrics(ranked, [len(relevant) for relevant in data.relevant], k)
    return {f"rerank {name}": value for name, value in found.items()}


def with_ensemble_scores(scored: Any, zero_shot: Any, query_column: str = "anchor") -> Any:
    """The rows with their "teacher_scores" (the cross-encoder's, from `score_with_teachers`) replaced by the
    ensemble's (the bi-encoder's cosines standardised over every pair of every row)."""
    passages = [c for c in scored.column_names if c not in (query_column, "teacher_scores")]
    groups = [list(group) for group in zip(*(scored[c] for c in passages), strict=True)]
    cross = torch.tensor(scored["teacher_scores"])
    ensemble = ensemble_scores(cross, bi_encoder_scores(zero_shot, scored[query_column], groups))
    return scored.remove_columns("teacher_scores").add_column("teacher_scores", ensemble.tolist())
