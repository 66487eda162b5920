"""Demo entry: an ensemble forecaster of Mauna Loa CO2 trained with almost-fair CRPS (AIFS-CRPS, arXiv 2412.15832)
against the same forecaster trained with the standard CRPS, the fair CRPS, and an MSE point forecast.

Data: statsmodels' weekly Mauna Loa CO2 record (1958-2001, gaps interpolated). Task: the change over the next
`horizon` weeks from the last `window` weeks (relative to the latest value, standardised on the training years);
trained on the weeks before `split_year`, scored on the weeks after. Model: a small MLP that takes the window and a
Gaussian noise vector, so each noise draw is an ensemble member (as AIFS-CRPS injects noise); trained with
`members` members per sample (4, as the paper's O96 run), scored with `eval_members` members. The MSE model gets
zero noise (a point forecast, whose CRPS is its absolute error).

Metrics on the held-out years: CRPS skill score against climatology (the training changes as the ensemble),
``1 - CRPS / CRPS_clim``, with the CRPS of the forecast distribution estimated by the fair CRPS of `eval_members`
members; and the spread/skill ratio sqrt(mean ensemble variance) / RMSE of the ensemble mean (1 is calibrated).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.functional.crps import afcrps, fair_crps

METHODS = {"afCRPS (alpha=0.95)": 0.95, "CRPS (alpha=0)": 0.0, "fair CRPS (alpha=1)": 1.0, "MSE point": None}
OURS = "afCRPS (alpha=0.95)"
DATASET = "Mauna Loa CO2 weekly (statsmodels)"


@dataclass(frozen=True)
class ForecastSetup:
    """Budget of the comparison.

    Args:
        methods: which of METHODS to train.
        window: weeks of history the forecaster sees.
        horizon: weeks ahead to forecast.
        split_year: the first held-out year.
        members: ensemble members per training sample.
        eval_members: ensemble members per test sample.
        noise_dim: size of the noise input.
        hidden: hidden width of the MLP.
        steps: Adam steps per method.
        batch_size: training samples per step.
        learning_rate: Adam learning rate.
        seed: seed of the initialisation, the batches and the noise.
    """

    methods: tuple[str, ...] = tuple(METHODS)
    window: int = 52
    horizon: int = 4
    split_year: int = 1990
    members: int = 4
    eval_members: int = 32
    noise_dim: int = 4
    hidden: int = 64
    steps: int = 600
    batch_size: int = 128
    learning_rate: float = 3e-3
    seed: int = 0


class NoisyForecaster(nn.Module):
    """An MLP on (history window, noise): each noise draw gives one ensemble member."""

    def __init__(self, window: int, noise_dim: int, hidden: int) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(
            nn.Linear(window + noise_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1)
        )

    def forward(self, history: torch.Tensor, members: int, generator: torch.Generator | None) -> torch.Tensor:
        """(batch, members) forecasts; `generator=None` gives zero noise (every member is the point forecast)."""
        repeated = history.unsqueeze(1).expand(-1, members, -1)
        shape = (*repeated.shape[:2], self.noise_dim)
        noise = torch.zeros(shape) if generator is None else torch.randn(shape, generator=generator)
        return self.net(torch.cat([repeated, noise], dim=-1)).squeeze(-1)


def load_windows(setup: ForecastSetup) -> dict[str, torch.Tensor]:
    """Train/test (history, change) pairs of the weekly CO2 record, standardised on the training part."""
    from hf_margin.demo.data.co2 import co2_windows

    windows = co2_windows(setup.window, setup.horizon, setup.split_year)
    history, change, train, test = windows.history, windows.change[:, -1], windows.train, windows.test
    scale = float(change[train].std())
    as_tensor = lambda array: torch.tensor(array / scale, dtype=torch.float32)  # noqa: E731
    return {
        "train_x": as_tensor(history[train]),
        "train_y": as_tensor(change[train]),
        "test_x": as_tensor(history[test]),
        "test_y": as_tensor(change[test]),
    }


def train(alpha: float | None, split: dict[str, torch.Tensor], setup: ForecastSetup) -> NoisyForecaster:
    """A forecaster trained with afCRPS at `alpha` over `members` noise draws, or with MSE (alpha None)."""
    torch.manual_seed(setup.seed)
    model = NoisyForecaster(setup.window, setup.noise_dim, setup.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.learning_rate)
    generator = torch.Generator().manual_seed(setup.seed)
    for _ in range(setup.steps):
        rows = torch.randint(len(split["train_y"]), (setup.batch_size,), generator=generator)
        history, target = split["train_x"][rows], split["train_y"][rows]
        if alpha is None:
            loss = nn.functional.mse_loss(model(history, 1, None).squeeze(1), target)
        else:
            loss = afcrps(model(history, setup.members, generator), target, alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def evaluate(
    model: NoisyForecaster, point: bool, split: dict[str, torch.Tensor], setup: ForecastSetup
) -> dict[str, float]:
    """Test CRPS, its skill score against climatology, and the spread/skill ratio."""
    generator = torch.Generator().manual_seed(setup.seed + 1)
    with torch.no_grad():
        ensemble = model(split["test_x"], setup.eval_members, None if point else generator)
    target = split["test_y"]
    score = (ensemble[:, 0] - target).abs().mean() if point else fair_crps(ensemble, target)
    score_climatology = climatology_crps(split["train_y"], target)
    spread = ensemble.var(dim=1).mean().sqrt()
    skill = (ensemble.mean(dim=1) - target).pow(2).mean().sqrt()
    return {
        "CRPS": float(score),
        "CRPS skill score": float(1 - score / score_climatology),
        "spread/skill": float(spread / skill),
        "RMSE": float(skill),
    }


def climatology_crps(train_changes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fair CRPS of the climatological ensemble (every training change) for each test target, averaged."""
    members = train_changes.unsqueeze(0).expand(len(target), -1)
    return fair_crps(members, target)


def run(context: DemoContext, setup: ForecastSetup = ForecastSetup()) -> list[DemoRow]:
    unknown = [m for m in setup.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    split = load_windows(setup)
    results: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}
    for method in context.progress(setup.methods, desc="afCRPS forecast demo", unit="method", leave=False):
        start = time.perf_counter()
        with single_thread():
            model = train(METHODS[method], split, setup)
            results[method] = evaluate(model, METHODS[method] is None, split, setup)
        timings[method] = time.perf_counter() - start
    report = {
        "setup": asdict(setup),
        "dataset": DATASET,
        "train_rows": len(split["train_y"]),
        "test_rows": len(split["test_y"]),
        "results": results,
        "seconds": timings,
    }
    (context.out_dir / "probabilistic.json").write_text(json.dumps(report, indent=2))
    return rows_from_results(results, timings)


def rows_from_results(results: dict[str, dict[str, float]], timings: dict[str, float]) -> list[DemoRow]:
    """afCRPS against every other method: CRPS skill score, and 1 - |spread/skill - 1| between ensembles."""
    if OURS not in results:
        return []
    ours = results[OURS]
    rows = []
    for baseline, values in results.items():
        if baseline == OURS:
            continue
        rows.append(
            DemoRow(
                "probabilistic",
                OURS,
                baseline,
                "CRPS skill score",
                ours["CRPS skill score"],
                values["CRPS skill score"],
                timings[OURS],
                DATASET,
            )
        )
        if METHODS[baseline] is not None:
            rows.append(
                DemoRow(
                    "probabilistic",
                    OURS,
                    baseline,
                    "1 - |spread/skill - 1|",
                    1 - abs(ours["spread/skill"] - 1),
                    1 - abs(values["spread/skill"] - 1),
                    timings[OURS],
                    DATASET,
                )
            )
    return rows
