"""Demo entry: a linear model learnt from aggregate responses only, with the bag-level, instance-level and
interpolating losses (Javanmard et al., arXiv 2401.11081), on scikit-learn's diabetes regression data.

The training rows (features standardised on them) are split into random bags of k = 1, 4, 16 rows; the learner
sees only each bag's mean response. A linear model is fitted to convergence (full-batch L-BFGS from zero) with
each loss; the metric is the test MSE on individual responses (original units; lower is better), averaged over
bagging seeds. With k = 1 all three losses are ordinary least squares.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.functional.aggregate_responses import aggregate_responses, random_bags
from hf_margin.losses.aggregate_responses import AggregateResponseLoss

ENTRY = "aggregate"
DATASET = "sklearn diabetes (442 patients, 10 features)"
BASELINE = "instance-level"


@dataclass(frozen=True)
class AggregateSetup:
    """Bag sizes, the interpolating rho, the test share, bagging seeds and L-BFGS iterations."""

    bag_sizes: tuple[int, ...] = (1, 4, 16)
    rho: float = 0.5
    test_fraction: float = 0.3
    seeds: tuple[int, ...] = tuple(range(20))
    iterations: int = 100


def load_split(test_fraction: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Diabetes features standardised on a seeded training split; responses centred and scaled likewise."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x, y = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    cut = round(len(y) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    mean, std = x[train].mean(0), x[train].std(0)
    return (x[train] - mean) / std, y[train], (x[test] - mean) / std, y[test]


def fit_linear(x: Tensor, bag_ids: Tensor, bag_responses: Tensor, loss: nn.Module, iterations: int) -> nn.Linear:
    """A linear model fitted from zero to the bag responses with `loss` (full-batch L-BFGS)."""
    model = nn.Linear(x.shape[1], 1).double()
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    optimiser = torch.optim.LBFGS(model.parameters(), max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimiser.zero_grad()
        value = loss(model(x), bag_ids, bag_responses)
        value.backward()
        return value

    optimiser.step(closure)
    return model


def run(context: DemoContext, setup: AggregateSetup | None = None) -> list[DemoRow]:
    """The demo entry: test MSE per loss and bag size, ``aggregate.json`` and the table rows."""
    setup = setup or AggregateSetup()
    train_x, train_y, test_x, test_y = load_split(setup.test_fraction)
    scale = train_y.std()  # fit on standardised responses; MSE reported in the original units
    losses = {
        "bag-level": AggregateResponseLoss("bag"),
        BASELINE: AggregateResponseLoss("instance"),
        f"interpolating (rho={setup.rho})": AggregateResponseLoss("interpolating", rho=setup.rho),
    }
    mse: dict[str, dict[int, list[float]]] = {name: {k: [] for k in setup.bag_sizes} for name in losses}
    seconds: dict[str, dict[int, float]] = {name: dict.fromkeys(setup.bag_sizes, 0.0) for name in losses}
    with single_thread():
        for k in context.progress(setup.bag_sizes, desc="aggregate demo", unit="bag size", leave=False):
            for seed in setup.seeds:
                bag_ids = random_bags(len(train_y), k, seed)
                bag_responses = aggregate_responses((train_y - train_y.mean()) / scale, bag_ids)
                for name, loss in losses.items():
                    start = time.perf_counter()
                    model = fit_linear(train_x, bag_ids, bag_responses, loss, setup.iterations)
                    seconds[name][k] += time.perf_counter() - start
                    with torch.no_grad():
                        predicted = model(test_x).squeeze(1) * scale + train_y.mean()
                    mse[name][k].append(float(((predicted - test_y) ** 2).mean()))
    report = {
        "setup": asdict(setup),
        "dataset": DATASET,
        "test_mse": {name: {str(k): v for k, v in per_k.items()} for name, per_k in mse.items()},
    }
    context.out_dir.mkdir(parents=True, exist_ok=True)
    (context.out_dir / f"{ENTRY}.json").write_text(json.dumps(report, indent=2))
    return [
        DemoRow(
            ENTRY,
            f"{name}, k={k}",
            f"{BASELINE}, k={k}",
            "test MSE (lower is better)",
            float(np.mean(mse[name][k])),
            float(np.mean(mse[BASELINE][k])),
            seconds[name][k],  # the fits of every bagging seed at this k
            DATASET,
        )
        for name in losses
        if name != BASELINE
        for k in setup.bag_sizes
    ]
