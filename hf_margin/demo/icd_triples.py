"""ICD-10-CM training rows with mined hard negatives, shared by the embedding and Margin-MSE demo entries.

Rows: (anchor = inclusion term, positive = its code's description, negative_1..N = descriptions of other training
codes mined from a bi-encoder with KaLM's rank window and consistency filter, scores = the miner's cosine
scores of positive then negatives). Cached under the demo cache folder, keyed by every argument (the corpus by a
digest of its texts).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from hf_margin.demo.petal import cache_dir


@dataclass(frozen=True)
class MiningSetup:
    """How many rows to mine, and KaLM's mining options.

    Args:
        rows: rows wanted; 1.2x as many pairs are mined, since the consistency filter drops some.
        num_negatives: hard negatives per row.
        rank_window: the miner's rank window [first, last) the negatives are sampled from.
        consistency_top_k: drop a pair whose positive is not in the miner's top k.
        seed: seed of the sampled pairs and the mining.
    """

    rows: int
    num_negatives: int = 3
    rank_window: tuple[int, int] = (10, 50)
    consistency_top_k: int = 50
    seed: int = 0


def mined_icd_rows(setup: MiningSetup, pairs: list[tuple[str, str]], corpus: list[str], miner: Any) -> Any:
    """The mined, miner-scored `datasets.Dataset` of training rows (cached: mining encodes the whole corpus).

    Args:
        setup: the row count and mining options.
        pairs: (inclusion term, description) training pairs.
        corpus: the training codes' descriptions the negatives come from.
        miner: a SentenceTransformer that mines and scores.
    """
    import datasets

    from hf_margin.embeddings import add_teacher_scores, mine_hard_negatives

    first, last = setup.rank_window
    corpus_digest = hashlib.sha256("\n".join(corpus).encode()).hexdigest()[:12]  # the corpus is part of the key
    tag = f"{setup.rows}_{setup.num_negatives}_{first}_{last}_{setup.consistency_top_k}_{setup.seed}_{corpus_digest}"
    path = cache_dir() / f"icd_mined_rows_{tag}.json"
    if path.is_file():
        return datasets.Dataset.from_dict(json.loads(path.read_text()))
    sample = random.Random(setup.seed).sample(pairs, min(len(pairs), int(1.2 * setup.rows)))
    rows = datasets.Dataset.from_dict({"anchor": [a for a, _ in sample], "positive": [p for _, p in sample]})
    mined = mine_hard_negatives(
        rows,
        miner,
        corpus,
        recipe="kalm",
        num_negatives=setup.num_negatives,
        rank_window=setup.rank_window,
        consistency_top_k=setup.consistency_top_k,
        seed=setup.seed,
        show_progress_bar=False,
    )
    scored = add_teacher_scores(mined, miner, show_progress_bar=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(scored.to_dict()))
    return scored
