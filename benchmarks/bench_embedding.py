"""MarginEmbeddingLoss with every part on against MultipleNegativesRankingLoss and GISTEmbedLoss: one training
step's time (loss, backward, AdamW) and peak memory on all-MiniLM-L6-v2 with the same batch of ICD-10-CM rows.
Targets: within 5% of MNRL (no guide model), below GIST (which embeds every column a second time with its guide).
GISTEmbedLoss takes one hard negative, so that case uses (anchor, positive, negative) rows and list mixing."""

from __future__ import annotations

import copy
import random
import sys
from typing import Any

import torch

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

BATCH = 32
CASES = {
    "MiniLM-L6, batch 32 x (anchor, positive, 3 negatives), 64 tokens": "MultipleNegativesRankingLoss",
    "MiniLM-L6, batch 32 x (anchor, positive, 1 negative), 64 tokens": "GISTEmbedLoss (guide: frozen MiniLM)",
}


def icd_batch(negatives: int) -> tuple[list[list[str]], torch.Tensor]:
    """Columns of 32 ICD-10-CM rows (term, description, random other descriptions) and teacher-like scores."""
    from hf_margin.demo.data.retrieval import icd10_retrieval

    data = icd10_retrieval()
    rng = random.Random(0)
    rows = rng.sample(data.train_pairs, BATCH)
    columns = [[term for term, _ in rows], [description for _, description in rows]]
    columns += [rng.sample(data.train_corpus, BATCH) for _ in range(negatives)]
    scores = torch.rand(BATCH, 1 + negatives, generator=torch.Generator().manual_seed(0))
    return columns, scores


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    """One training step with our loss (every part on) and with the case's anchor, on identical models."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

    from hf_margin.demo.data.pretrained import minilm_path
    from hf_margin.embeddings import MarginEmbeddingLoss

    gist = CASES[case].startswith("GIST")
    columns, scores = icd_batch(1 if gist else 3)
    base = SentenceTransformer(minilm_path(), device=device)
    base.max_seq_length = 64
    mixing: dict[str, Any] = {"mixing": "similarity"} if gist else {"mixing": "pairwise", "num_mixed": 4}
    steps = []
    for which in ("ours", "anchor"):
        model = copy.deepcopy(base)
        if which == "ours":
            loss: Any = MarginEmbeddingLoss(
                model, focal_gamma=2.0, filter_strategy="relative", distill_weight=1.0, seed=0, **mixing
            )
            labels: torch.Tensor | None = scores.to(device)
        elif gist:
            loss, labels = GISTEmbedLoss(model, copy.deepcopy(base).eval(), temperature=0.05), None
        else:
            loss, labels = MultipleNegativesRankingLoss(model), None
        features = [
            {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in model.preprocess(texts).items()}
            for texts in columns
        ]
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step(loss: Any = loss, features: list = features, labels: Any = labels, optimizer: Any = optimizer) -> None:
            loss(features, labels).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps.append(step)
    return steps[0], steps[1]


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    return [
        BenchRow(
            "embedding loss training step (all parts on)",
            case,
            anchor,
            *measure_case(__name__, case, make_steps, 4 if quick else 10, device),
        )
        for case, anchor in CASES.items()
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
