"""Demo entry: do Jiang et al.'s margin-based generalization measures rank small digits models by their gap?

Jiang et al., "Fantastic Generalization Measures and Where to Find Them" (arXiv 1912.02178). Several small ReLU MLPs
are trained on sklearn digits (1,797 real 8x8 images) with different settings: hidden width, learning rate, share
of symmetric label noise and training-set size. For each run every measure of
`hf_margin.diagnostics.generalization.generalization_measures` is computed on its training set (size-normalised,
with the weights at initialisation and the path-norm), and the observed generalization gap is train accuracy (on
the labels trained on) minus test accuracy (clean held-out rows). Each row is a measure's Kendall tau with the gap
over the runs (higher: the measure ranks the runs more like their gaps), against the tau of the number of
parameters. Few runs and one seed: a small, noisy check; the measures are correlates, not guarantees (Gastpar et
al., ICLR 2024).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.demo.imbalance import with_noise
from hf_margin.diagnostics.generalization import generalization_measures, weight_matrices

ENTRY = "generalization"
BASELINE = "number of parameters"
METRIC = "Kendall tau with the accuracy gap"
# (hidden width, learning rate, label-noise share, training rows): a base run and one-factor variations
RUNS = (
    (64, 1e-2, 0.0, 600),
    (16, 1e-2, 0.0, 600),
    (256, 1e-2, 0.0, 600),
    (64, 1e-3, 0.0, 600),
    (64, 5e-2, 0.0, 600),
    (64, 1e-2, 0.2, 600),
    (64, 1e-2, 0.4, 600),
    (64, 1e-2, 0.0, 150),
    (64, 1e-2, 0.0, 1200),
    (256, 1e-2, 0.4, 150),
)


@dataclass(frozen=True)
class GeneralizationSetup:
    """Budget of the demo.

    Args:
        runs: (hidden width, Adam learning rate, label-noise share, training rows) of each trained model.
        steps: full-batch Adam steps per run.
        test_rows: held-out rows (clean labels) for test accuracy.
        seed: seed of the split, the noise and the initialisation.
    """

    runs: tuple[tuple[int, float, float, int], ...] = RUNS
    steps: int = 300
    test_rows: int = 500
    seed: int = 0


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train_run(
    width: int, learning_rate: float, noise: float, rows: int, data: dict[str, torch.Tensor], setup: GeneralizationSetup
) -> dict[str, float]:
    """Train one MLP and return its measures, train/test accuracy, gap and parameter count."""
    x, y = data["train_x"][:rows], data["train_y"][:rows]
    labels = with_noise(y, noise, 10, setup.seed) if noise else y
    torch.manual_seed(setup.seed)
    model = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))
    init = {k: w.detach().clone() for k, w in weight_matrices(model).items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    for _ in range(setup.steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        measures = generalization_measures(model, model(x), labels, init, input_shape=(64,), normalize=True)
    train_acc, test_acc = _accuracy(model, x, labels), _accuracy(model, data["test_x"], data["test_y"])
    return {
        **measures,
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "gap": train_acc - test_acc,
        BASELINE: float(sum(p.numel() for p in model.parameters())),
    }


def load_split(setup: GeneralizationSetup) -> dict[str, torch.Tensor]:
    """sklearn digits scaled to [0, 1], shuffled; the last `test_rows` rows are the test set."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = torch.randperm(len(digits.target), generator=torch.Generator().manual_seed(setup.seed))
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)[order]
    y = torch.as_tensor(digits.target)[order]
    cut = len(y) - setup.test_rows
    return {"train_x": x[:cut], "train_y": y[:cut], "test_x": x[cut:], "test_y": y[cut:]}


def kendall_taus(results: list[dict[str, float]]) -> dict[str, float]:
    """Kendall tau of every measure (and the parameter count) with the gap over the runs."""
    from scipy.stats import kendalltau

    gaps = [r["gap"] for r in results]
    skip = {"gap", "train_accuracy", "test_accuracy"}
    return {key: float(kendalltau([r[key] for r in results], gaps).statistic) for key in results[0] if key not in skip}


def run(context: DemoContext, setup: GeneralizationSetup = GeneralizationSetup()) -> list[DemoRow]:
    if len(setup.runs) < 3:
        raise ValueError(f"`runs` must hold at least 3 settings for a rank correlation, got {len(setup.runs)}")
    start = time.perf_counter()
    data = load_split(setup)
    results: list[dict[str, Any]] = []
    with single_thread():
        for width, lr, noise, rows in context.progress(setup.runs, desc="generalization demo", unit="run", leave=False):
            results.append(train_run(width, lr, noise, rows, data, setup))
    taus = kendall_taus(results)
    seconds = time.perf_counter() - start
    report = {"setup": asdict(setup), "runs": results, "kendall_tau": taus, "seconds": seconds}
    context.out_dir.mkdir(parents=True, exist_ok=True)
    (context.out_dir / "generalization.json").write_text(json.dumps(report, indent=2))
    return [
        DemoRow(ENTRY, key, BASELINE, METRIC, tau, taus[BASELINE], seconds, "sklearn digits (MLPs)")
        for key, tau in taus.items()
        if key != BASELINE
    ]
