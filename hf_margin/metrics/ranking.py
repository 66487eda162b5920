"""Ranking metrics from ranked relevance lists: MRR@k, nDCG@k (binary relevance), R@1 and R@k ("a relevant
document in the top k", the success rate that retrieval papers also call accuracy@k)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def ranking_metrics(ranked: Sequence[Sequence[bool]], relevant_counts: Sequence[int], k: int = 10) -> dict[str, float]:
    """Mean over queries of MRR@k, nDCG@k, R@1 and R@k.

    Args:
        ranked: per query, whether each retrieved item (best first, at least the top k) is relevant.
        relevant_counts: per query, how many relevant items exist (for nDCG's ideal ranking).
        k: the cut-off.
    """
    if len(ranked) != len(relevant_counts) or not ranked:
        raise ValueError(
            f"`ranked` and `relevant_counts` must be equally long and non-empty, got "
            f"{len(ranked)} and {len(relevant_counts)}"
        )
    totals = {"MRR": 0.0, "nDCG": 0.0, "R@1": 0.0, "R@k": 0.0}
    for hits, count in zip(ranked, relevant_counts, strict=True):
        top = list(hits[:k])
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
