"""IGNITE's regularised step against the plain step: the same MLP regressor on the same batch of scikit-learn's
diabetes data (forward + backward of the MSE loss, plus, for IGNITE, the surrogate gradient norm, its
finite-difference penalty gradient and the dual step). The overhead of the method, as a time and memory ratio."""

from __future__ import annotations

import sys

import torch
from torch import nn

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

CASES = ("MLP 10-256-256-1, batch 256", "MLP 10-1024-1024-1, batch 256")


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    from sklearn.datasets import load_diabetes

    from hf_margin.functional.ignite import dual_ascent_step, ignite_penalty_gradients

    width = int(case.split("-")[1])
    x_np, y_np = load_diabetes(return_X_y=True)
    x = torch.tensor(x_np[:256], dtype=torch.float32, device=device)
    y = torch.tensor(y_np[:256] / 100.0, dtype=torch.float32, device=device)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    state = {"multiplier": 1e-3}

    def plain() -> None:
        torch.nn.functional.mse_loss(model(x).squeeze(-1), y).backward()

    def ignite() -> None:
        plain()
        norm, penalty = ignite_penalty_gradients(lambda: model(x).mean(), params)
        for parameter, extra in zip(params, penalty, strict=True):
            assert parameter.grad is not None
            parameter.grad.add_(extra, alpha=state["multiplier"])
        state["multiplier"] = dual_ascent_step(state["multiplier"], float(norm))

    return ignite, plain


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    return [
        BenchRow(
            "IGNITE step (fwd+bwd)",
            case,
            "the same step without IGNITE",
            *measure_case(__name__, case, make_steps, 10 if quick else 50, device),
        )
        for case in CASES
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
