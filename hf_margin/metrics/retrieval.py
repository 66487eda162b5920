"""Embedding-retrieval metrics of deep metric learning: Recall@1 (precision at 1) and MAP@R.

Musgrave, Belongie, Lim, "A Metric Learning Reality Check" (ECCV 2020, arXiv 2003.08505). For a query with R
relevant references (same label), rank the references by similarity:

- Recall@1: whether the nearest reference is relevant;
- MAP@R: ``(1/R) sum_{i=1}^{R} P(i) rel(i)`` over the top R references, with P(i) the precision at i.

Both are averaged over queries. As pytorch-metric-learning's `AccuracyCalculator` does, the query itself is
left out of its references when the references are the queries, and queries without any relevant reference are
left out of the averages.
"""

from __future__ import annotations

import torch

from hf_margin._validation import check_embeddings, check_finite, check_label_vector
from hf_margin.functional.contrastive import similarity_matrix
from hf_margin.metrics._arrays import ArrayLike, to_tensor


def retrieval_metrics(
    query_emb: ArrayLike,
    query_labels: ArrayLike,
    ref_emb: ArrayLike | None = None,
    ref_labels: ArrayLike | None = None,
) -> dict[str, float]:
    """Recall@1 and MAP@R of cosine-similarity retrieval.

    Tensors (any device) or numpy arrays; non-finite embeddings raise a ValueError naming them.

    Args:
        query_emb: (Q, D) query embeddings.
        query_labels: (Q,) their integer labels.
        ref_emb / ref_labels: (R, D) / (R,) the searched set; default: the queries themselves (leave-one-out).

    Example:
        >>> retrieval_metrics(test_embeddings, test_labels)  # {"R@1": 0.91, "MAP@R": 0.64}
    """
    query_emb, query_labels, ref_emb, ref_labels = (
        to_tensor(x) for x in (query_emb, query_labels, ref_emb, ref_labels)
    )
    check_embeddings(query_emb, name="query_emb")
    check_finite(query_emb, "query_emb")
    query_labels = check_label_vector(query_labels, query_emb.shape[0], "query_labels")
    leave_one_out = ref_emb is None
    if (ref_emb is None) != (ref_labels is None):
        raise ValueError("pass both `ref_emb` and `ref_labels`, or neither (then the queries are the references)")
    if ref_emb is None or ref_labels is None:
        ref_emb, ref_labels = query_emb, query_labels
    check_embeddings(ref_emb, query_emb.shape[1], name="ref_emb")
    if not leave_one_out:
        check_finite(ref_emb, "ref_emb")
    ref_labels = check_label_vector(ref_labels, ref_emb.shape[0], "ref_labels").to(query_labels.device)
    sim = similarity_matrix(query_emb.detach().double(), ref_emb.detach().double().to(query_emb.device))
    relevant = query_labels.unsqueeze(1) == ref_labels.unsqueeze(0)
    if leave_one_out:
        sim.fill_diagonal_(float("-inf"))
        relevant.fill_diagonal_(False)
    counts = relevant.sum(dim=1)
    keep = counts > 0
    if not keep.any():
        raise ValueError(
            "no query has a relevant reference: every label in `query_labels` is absent from `ref_labels` "
            "(or, without references, occurs only once)"
        )
    sim, relevant, counts = sim[keep], relevant[keep], counts[keep]
    depth = int(counts.max())
    order = sim.topk(depth, dim=1).indices
    hits = relevant.gather(1, order).double()
    ranks = torch.arange(1, depth + 1, dtype=torch.float64, device=hits.device)
    within_r = ranks.unsqueeze(0) <= counts.unsqueeze(1)
    precision = hits.cumsum(dim=1) / ranks
    map_at_r = (precision * hits * within_r).sum(dim=1) / counts
    return {"R@1": float(hits[:, 0].mean()), "MAP@R": float(map_at_r.mean())}
