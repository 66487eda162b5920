"""Catalogue I classification losses against torch's cross-entropy (forward + backward on the same logits, batch
256, 10 and 1,000 classes: the overhead of each loss; "CE + log-partition penalty" is cross-entropy plus
`LogitZLoss(1e-4)`, what a user adds), and AUC-M against LibAUC's `AUCMLoss` (v1, batch
positive ratio) on the same 256 scores."""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

BATCH = 256
LOSSES = (
    "focal",
    "class-balanced focal",
    "DatasetEquity-weighted CE",
    "LDR-KL",
    "ALDR-KL",
    "comp-sum GCE",
    "AnyLoss F1 (one-vs-rest)",
    "Z-loss",
    "CE + log-partition penalty",
)
CASES = (*(f"{name} C={classes}" for name in LOSSES for classes in (10, 1000)), "AUC-M v1 B=256")


def _ours(name: str, classes: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from hf_margin.functional.focal import focal_loss, generalized_focal_weight
    from hf_margin.losses import ALDRKLLoss, AnyLoss, CompSumLoss, FocalLoss, LDRKLLoss, LogitZLoss, ZLoss

    counts = torch.logspace(3, 0, classes).round().tolist()
    modules = {
        "focal": FocalLoss(gamma=2.0),
        "class-balanced focal": FocalLoss(gamma=2.0, class_counts=counts, beta=0.9999),
        "LDR-KL": LDRKLLoss(lam=10.0, margin=0.1),
        "comp-sum GCE": CompSumLoss(tau=1.7),
        "AnyLoss F1 (one-vs-rest)": AnyLoss(metric="f_beta"),
        "Z-loss": ZLoss(a=1.0, b=6.0),
    }
    if name == "DatasetEquity-weighted CE":
        weights = generalized_focal_weight(torch.rand(BATCH, generator=torch.Generator().manual_seed(1)))
        return lambda logits, labels: focal_loss(logits, labels, gamma=0.0, sample_weight=weights)
    if name == "CE + log-partition penalty":
        penalty = LogitZLoss(coefficient=1e-4)
        return lambda logits, labels: F.cross_entropy(logits, labels) + penalty(logits)
    if name == "ALDR-KL":
        aldr = ALDRKLLoss(num_examples=BATCH)
        indices = torch.arange(BATCH)
        return lambda logits, labels: aldr(logits, labels, indices)
    return modules[name]


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    g = torch.Generator().manual_seed(0)
    if case.startswith("AUC-M"):
        from libauc.losses import AUCMLoss

        from hf_margin.losses import AUCMarginLoss

        scores = torch.rand(BATCH, generator=g).to(device).requires_grad_(True)
        labels = (torch.rand(BATCH, generator=g) < 0.1).float().to(device)
        ours_loss, anchor_loss = AUCMarginLoss(margin=1.0).to(device), AUCMLoss(margin=1.0, device=device)

        def ours() -> None:
            ours_loss(scores, labels).backward()

        def anchor() -> None:
            anchor_loss(scores, labels).backward()

        return ours, anchor
    name, classes_text = case.rsplit(" C=", 1)
    classes = int(classes_text)
    logits = torch.randn(BATCH, classes, generator=g).to(device).requires_grad_(True)
    labels = torch.randint(classes, (BATCH,), generator=g).to(device)
    loss = _ours(name, classes)

    def ours_step() -> None:
        loss(logits, labels).backward()

    def cross_entropy() -> None:
        F.cross_entropy(logits, labels).backward()

    return ours_step, cross_entropy


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    rows = []
    for case in CASES:
        timing = measure_case(__name__, case, make_steps, 20 if quick else 100, device)
        if case.startswith("AUC-M"):
            rows.append(BenchRow("AUC-M (fwd+bwd)", case, "LibAUC AUCMLoss", *timing))
        else:
            rows.append(BenchRow("classification loss (fwd+bwd, B=256)", case, "torch cross-entropy", *timing))
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
