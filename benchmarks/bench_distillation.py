"""Distillation losses (forward + backward on the same inputs) against the plain loss each one replaces: Dual-Head
KD's BinaryKL-Norm and MPT's focal distillation KL against torch's KD (``T^2 kl_div`` of tempered softmaxes), and
the landmark KD-Loss (arXiv 2111.07047; no landmark data offline, so synthetic 68-point batches) against torch's
MSE. No anchor library implements these losses; the ratios are the overhead over the base loss."""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

CASES = ("BinaryKL-Norm B=256 C=100", "focal distillation KL B=256 C=100", "landmark KD-Loss B=70 68 points")


def _torch_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    return temperature**2 * F.kl_div(
        F.log_softmax(student / temperature, 1),
        F.log_softmax(teacher / temperature, 1),
        reduction="batchmean",
        log_target=True,
    )


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    from hf_margin.functional.dual_head_kd import binary_kl_norm
    from hf_margin.functional.negative_flips import focal_distillation_kl
    from hf_margin.losses.landmark_kd import LandmarkKDLoss

    g = torch.Generator().manual_seed(0)
    if case.startswith("landmark"):
        truth = torch.rand(70, 136, generator=g).to(device)
        tough, tolerant = (truth + 0.05 * torch.randn(70, 136, generator=g).to(device) for _ in range(2))
        predictions = (truth + 0.1 * torch.randn(70, 136, generator=g).to(device)).requires_grad_(True)
        loss = LandmarkKDLoss()

        def landmark() -> None:
            loss(predictions, truth, tough, tolerant).backward()

        def mse() -> None:
            F.mse_loss(predictions, truth).backward()

        return landmark, mse
    student = torch.randn(256, 100, generator=g).to(device).requires_grad_(True)
    teacher = torch.randn(256, 100, generator=g).to(device)
    labels = torch.randint(100, (256,), generator=g).to(device)

    def ours() -> None:
        if case.startswith("BinaryKL"):
            binary_kl_norm(student, teacher, 2.0).backward()
        else:
            focal_distillation_kl(student, teacher, labels, temperature=5.0).backward()

    def kd() -> None:
        _torch_kd(student, teacher, 4.0).backward()

    return ours, kd


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    rows = []
    for case in CASES:
        timing = measure_case(__name__, case, make_steps, 20 if quick else 100, device)
        anchor = "torch MSE" if case.startswith("landmark") else "torch KD (T^2 kl_div)"
        rows.append(BenchRow("distillation loss (fwd+bwd)", case, anchor, *timing))
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
