"""Score a dataset in batches with a progress bar, resumably: finished batches go to a cache file as they come,
and a rerun with the same cache file continues where the last one stopped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm


def score_in_batches(
    dataset: Any,
    score_batch: Callable[[dict[str, list[Any]]], list[Any]],
    batch_size: int,
    cache_file: str | Path | None = None,
    description: str = "scoring",
    progress: bool = True,
) -> list[Any]:
    """One score per row of `dataset` (a `datasets.Dataset`), from `score_batch(rows)` on slices of it.

    Args:
        dataset: the rows; its fingerprint guards the cache against being reused for other data.
        score_batch: maps a slice (a dict of column lists) to one JSON-serialisable score per row.
        batch_size: rows per call.
        cache_file: where finished scores are kept (None: no caching).
        description, progress: the progress bar's label, and whether to show it.
    """
    cache = Path(cache_file) if cache_file is not None else None
    scores: list[Any] = []
    if cache is not None and cache.is_file():
        saved = json.loads(cache.read_text())
        if saved["fingerprint"] != dataset._fingerprint:
            raise ValueError(f"{cache} was written for another dataset; delete it or pass another `cache_file`")
        scores = saved["scores"]
    for start in tqdm(
        range(len(scores), len(dataset), batch_size), desc=description, disable=not progress, unit="batch"
    ):
        scores.extend(score_batch(dataset[start : start + batch_size]))
        if cache is not None:
            cache.write_text(json.dumps({"fingerprint": dataset._fingerprint, "scores": scores}))
    return scores
