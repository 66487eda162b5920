"""Margin heads against pytorch-metric-learning: forward + backward time and peak memory of ArcFace, CosFace and the
combined margin (set to ArcFace's (1, m, 0), against PML's ArcFace, which has no combined margin) at batch 256,
embedding 512, 1k and 100k classes (float32, same inputs, same class centres)."""

from __future__ import annotations

import math
import sys

import torch

from benchmarks._harness import BenchRow, Step, embedding_head_steps, measure_case, memory_main
from hf_margin.heads import ArcFaceHead, CombinedMarginHead, CosFaceHead

BATCH, DIM = 256, 512
CASES = {
    f"{head} C={classes // 1000}k": (head, classes)
    for head in ("arcface", "cosface", "combined")
    for classes in (1000, 100_000)
}


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    """One forward + backward of ours and of the anchor on identical inputs and centres."""
    from pytorch_metric_learning import losses

    head_name, classes = CASES[case]
    if head_name == "arcface":
        ours: torch.nn.Module = ArcFaceHead(DIM, classes, margin=math.radians(28.6), scale=64)
        anchor: torch.nn.Module = losses.ArcFaceLoss(num_classes=classes, embedding_size=DIM, margin=28.6, scale=64)
    elif head_name == "combined":
        ours = CombinedMarginHead(DIM, classes, m1=1.0, m2=math.radians(28.6), m3=0.0, scale=64)
        anchor = losses.ArcFaceLoss(num_classes=classes, embedding_size=DIM, margin=28.6, scale=64)
    else:
        ours = CosFaceHead(DIM, classes, margin=0.35, scale=64)
        anchor = losses.CosFaceLoss(num_classes=classes, embedding_size=DIM, margin=0.35, scale=64)
    ours, anchor = ours.to(device), anchor.to(device)
    with torch.no_grad():
        anchor.W.copy_(ours.weight.t())
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, DIM, generator=generator).to(device).requires_grad_(True)
    y = torch.randint(0, classes, (BATCH,), generator=generator).to(device)
    return embedding_head_steps(ours, anchor, x, y)


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    rows = []
    for case, (_, classes) in CASES.items():
        repeats = (3 if quick else 10) if classes > 10_000 else (10 if quick else 50)
        name = "CosFaceLoss" if case.startswith("cosface") else "ArcFaceLoss"
        measured = measure_case(__name__, case, make_steps, repeats, device)
        rows.append(BenchRow("margin heads (fwd+bwd, B=256, D=512)", case, f"PML {name}", *measured))
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
