"""Partial FC (sample_rate 0.1) against the unsharded full ArcFace head on one process: forward + backward time
and peak memory at batch 128, embedding 512, 100k and 1M classes (float32, same inputs, same class centres).

On one process Partial FC saves the (B, C) logits and the softmax work of the 90% unsampled centres; the dense
(C, D) centres and their gradient are the same size in both, so the memory gain is bounded by those."""

from __future__ import annotations

import sys

import torch

from benchmarks._harness import BenchRow, Step, embedding_head_steps, measure_case, memory_main
from hf_margin.heads import ArcFaceHead
from hf_margin.heads.partial_fc import PartialFCHead

BATCH, DIM, SAMPLE_RATE = 128, 512, 0.1
CASES = {"C=100k": 100_000, "C=1M": 1_000_000}


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    """One forward + backward of the sampled head and of the full head on identical inputs and centres."""
    classes = CASES[case]
    ours = PartialFCHead("arcface", DIM, classes, sample_rate=SAMPLE_RATE, margin=0.5, scale=64.0).to(device)
    anchor = ArcFaceHead(DIM, classes, margin=0.5, scale=64.0).to(device)
    with torch.no_grad():
        anchor.weight.copy_(ours.weight)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, DIM, generator=generator).to(device).requires_grad_(True)
    y = torch.randint(0, classes, (BATCH,), generator=generator).to(device)
    return embedding_head_steps(ours, anchor, x, y)


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    rows = []
    for case, classes in CASES.items():
        repeats = (2 if quick else 10) if classes > 100_000 else (3 if quick else 20)
        measured = measure_case(__name__, case, make_steps, repeats, device)
        rows.append(
            BenchRow(f"Partial FC {SAMPLE_RATE} (fwd+bwd, B={BATCH}, D={DIM})", case, "full ArcFaceHead", *measured)
        )
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
