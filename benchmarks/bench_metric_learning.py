"""Catalogue II metric-learning losses against pytorch-metric-learning 2.9.0 on the same inputs: forward + backward
of Multi-Similarity (miner + loss) and of TCM (all pairs), batch 256 and 1,024, dimension 512, 64 classes."""

from __future__ import annotations

import sys

import torch

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

DIM, CLASSES = 512, 64
CASES = tuple(f"{method} B={batch}" for method in ("MS miner+loss", "TCM") for batch in (256, 1024))


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    from pytorch_metric_learning import losses, miners

    from hf_margin.losses.multi_similarity import MultiSimilarityLoss, MultiSimilarityMiner
    from hf_margin.losses.tcm import ThresholdConsistentMarginLoss

    method, batch_text = case.rsplit(" B=", 1)
    g = torch.Generator().manual_seed(0)
    embeddings = torch.randn(int(batch_text), DIM, generator=g).to(device).requires_grad_(True)
    labels = torch.randint(CLASSES, (int(batch_text),), generator=g).to(device)
    if method == "TCM":
        ours_loss, anchor_loss = ThresholdConsistentMarginLoss(), losses.ThresholdConsistentMarginLoss()

        def ours() -> None:
            ours_loss(embeddings, labels).backward()

        def anchor() -> None:
            anchor_loss(embeddings, labels).backward()

        return ours, anchor
    ours_miner, ours_ms = MultiSimilarityMiner(), MultiSimilarityLoss()
    anchor_miner, anchor_ms = miners.MultiSimilarityMiner(), losses.MultiSimilarityLoss()

    def ours_step() -> None:
        ours_ms(embeddings, labels, ours_miner(embeddings, labels)).backward()

    def anchor_step() -> None:
        anchor_ms(embeddings, labels, anchor_miner(embeddings, labels)).backward()

    return ours_step, anchor_step


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    rows = []
    for case in CASES:
        timing = measure_case(__name__, case, make_steps, 5 if quick else 30, device)
        anchor = "PML TCM loss" if case.startswith("TCM") else "PML MultiSimilarityMiner + MultiSimilarityLoss"
        rows.append(BenchRow(f"metric learning (fwd+bwd, D={DIM})", case, anchor, *timing))
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
