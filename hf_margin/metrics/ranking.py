"""Ranking metrics from ranked relevance lists: MRR@k, nDCG@k (binary relevance), R@1 and R@k ("a relevant
document in the top k", the success rate that retrieval papers also call accuracy@k)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from hf_margin._validation import check_integers, check_positive_int
from hf_margin.metrics._arrays import ArrayLike, to_numpy


def _hits(row: ArrayLike, index: int) -> list[bool]:
    """One query's relevance flags as booleans; ValueError unless each is a bool or 0/1."""
    values = to_numpy(row, f"ranked[{index}]").tolist() if not isinstance(row, list | tuple) else list(row)
    if any(isinstance(v, float) or not isinstance(v, bool | numbers.Integral) or v not in (0, 1) for v in values):
        raise ValueError(f"`ranked[{index}]` must hold booleans (or 0/1), got {values[:10]!r}")
    return [bool(v) for v in values]


def ranking_metrics(ranked: Sequence[Sequence[bool]], relevant_counts: Sequence[int], k: int = 10) -> dict[str, float]:
    """Mean over queries of MRR@k, nDCG@k, R@1 and R@k, each in [0, 1].

    nDCG@k = DCG@k / IDCG@k with ``DCG@k = sum_{rank <= k, hit} 1 / log2(rank + 1)`` and the ideal ranking's
    ``IDCG@k`` over ``min(relevant_count, k)`` hits (binary relevance, Jarvelin & Kekalainen 2002).

    Args:
        ranked: per query, whether each retrieved item (best first) is relevant (lists, numpy arrays or tensors of
            bools or 0/1). A list shorter than k counts the missing ranks as not relevant.
        relevant_counts: per query, how many relevant items exist (for nDCG's ideal ranking); at least the hits
            its list holds. A query with no relevant item scores 0 on every metric.
        k: the cut-off, >= 1.

    Example:
        >>> ranking_metrics([[False, True], [True, False]], [1, 2], k=2)["MRR@2"]
        0.75
    """
    check_integers(k=k)
    check_positive_int(k, "k")
    if isinstance(ranked, str | bytes) or not isinstance(ranked, Sequence):
        raise TypeError(f"`ranked` must be a sequence of per-query relevance lists, got {type(ranked).__name__}")
    counts = to_numpy(relevant_counts, "relevant_counts").tolist()
    if len(ranked) != len(counts) or not ranked:
        raise ValueError(
            f"`ranked` and `relevant_counts` must be equally long and non-empty, got {len(ranked)} and {len(counts)}"
        )
    totals = {"MRR": 0.0, "nDCG": 0.0, "R@1": 0.0, "R@k": 0.0}
    for index, (row, count) in enumerate(zip(ranked, counts, strict=True)):
        check_integers(**{f"relevant_counts[{index}]": count})
        hits = _hits(row, index)
        if count < 0:
            raise ValueError(f"`relevant_counts[{index}]` must be an integer >= 0, got {count}")
        if sum(hits) > count:
            # more relevant items retrieved than exist: the counts and lists disagree (nDCG would exceed 1)
            raise ValueError(
                f"`ranked[{index}]` marks {sum(hits)} items relevant but `relevant_counts[{index}]` is {count}; "
                "a list cannot hold more relevant items than exist"
            )
        top = hits[:k]
        first = next((rank for rank, hit in enumerate(top, start=1) if hit), None)
        totals["MRR"] += 1.0 / first if first else 0.0
        dcg = sum(1.0 / math.log2(rank + 1) for rank, hit in enumerate(top, start=1) if hit)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(count, k) + 1))
        totals["nDCG"] += dcg / ideal if ideal else 0.0
        totals["R@1"] += float(bool(top) and top[0])
        totals["R@k"] += float(first is not None)
    n = len(ranked)
    return {
        f"MRR@{k}": totals["MRR"] / n,
        f"nDCG@{k}": totals["nDCG"] / n,
        "R@1": totals["R@1"] / n,
        f"R@{k}": totals["R@k"] / n,
    }
