"""Demo entry: RSS (robust self-training with out-of-domain unlabelled data, arXiv 2310.00027) on the poster's
Gaussian-mixture experiment, against training on the labelled rows only.

The poster's setting: d = 200, labelled rows from P0 (y = +-1 with probability 1/2, x ~ N(y mu0, I)), unlabelled
rows from P1 = 1/2 N(mu1, I) + 1/2 N(-mu1, I) with mu1 = mu0 + alpha v (mu0, v random unit vectors; alpha = 0 or
0.5 ||mu0||), a linear score and the ramp loss ``min(1, max(0, 1 - s y f(x)))``; m = 10 labelled and n = 10,000
unlabelled rows. The poster reports test accuracy 0.59 for ERM with m = 10, 0.82 (alpha = 0) and 0.81 (alpha = 0.5)
for RSS with n = 10^4, and 0.83 for ERM with m = 10,000 (the Bayes accuracy is Phi(1) = 0.841).

Ours (the poster does not give them): the score is w.x / ||w|| (a unit-norm linear model, so that the ramp's slope
s is in input units), started from the labelled rows' mean difference; AdamW through `RobustSelfTrainer`; a warm
start on the labelled rows, then the RSS objective with lambda = 1 on batches with a fixed share of labelled rows;
gamma = gamma' = inf (the poster's "non-robust" RSS) and a finite gamma = gamma' (the robust loss); ERM is the same
trainer with lambda = 0. Metric: accuracy on 10,000 fresh rows of P0, mean over seeds (the spread in the note).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread

ENTRY = "ood_unlabeled"
POSTER = {"erm": 0.59, "rss": {0.0: 0.82, 0.5: 0.81}, "erm_large": 0.83}


@dataclass(frozen=True)
class OODUnlabeledSetup:
    """The Gaussian-mixture experiment and its training budget.

    Args:
        dim: dimension d (the poster's 200).
        labeled: labelled rows m from P0 (the poster's table: 10).
        unlabeled: unlabelled rows n from P1 (the poster's 10,000).
        large_labeled: labelled rows of the reference ERM (the poster's 10,000).
        test_rows: test rows from P0.
        shifts: alpha / ||mu0|| of each run (the poster's 0 and 0.5).
        seeds: seeds of the data draw (each seed draws mu0, v and every sample).
        ramp_scale: slope s of the ramp loss.
        gamma: gamma = gamma' of the robust RSS row.
        rss_lambda: lambda of the pseudo-labelled term.
        ascent_steps: inner gradient-ascent steps of the robust row (step 1 / (2 gamma)).
        steps: optimizer steps of every training.
        warmup_steps: first steps on the labelled rows only (lambda = 0).
        batch_size: rows per step (the labelled ones all in every batch of RSS).
        learning_rate: AdamW learning rate.
    """

    dim: int = 200
    labeled: int = 10
    unlabeled: int = 10_000
    large_labeled: int = 10_000
    test_rows: int = 10_000
    shifts: tuple[float, ...] = (0.0, 0.5)
    seeds: int = 3
    ramp_scale: float = 1.0
    gamma: float = 1.0
    rss_lambda: float = 1.0
    ascent_steps: int = 3
    steps: int = 200
    warmup_steps: int = 50
    batch_size: int = 500
    learning_rate: float = 0.05


class UnitLinear(nn.Module):
    """The score ``f(x) = w.x / ||w||`` (one logit per row)."""

    def __init__(self, init: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(init.detach().clone().float())

    def forward(self, features: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        return {"logits": (features @ (self.weight / self.weight.norm()))[:, None]}


@dataclass(frozen=True)
class Mixture:
    """One draw of the experiment: mu0, the shift direction v, and the generator of every sample."""

    mu0: Tensor
    v: Tensor
    g: torch.Generator

    @classmethod
    def draw(cls, dim: int, seed: int) -> Mixture:
        g = torch.Generator().manual_seed(seed)
        mu0 = nn.functional.normalize(torch.randn(dim, generator=g), dim=0)
        return cls(mu0, nn.functional.normalize(torch.randn(dim, generator=g), dim=0), g)

    def sample(self, rows: int, alpha: float = 0.0) -> tuple[Tensor, Tensor]:
        """Rows of ``1/2 N(mu, I) + 1/2 N(-mu, I)`` with mu = mu0 + alpha ||mu0|| v, and their 0/1 classes."""
        mean = self.mu0 + alpha * self.mu0.norm() * self.v
        classes = torch.randint(0, 2, (rows,), generator=self.g)
        return (2 * classes[:, None] - 1) * mean + torch.randn(rows, len(mean), generator=self.g), classes


class _Columns(Dataset[dict[str, Tensor]]):
    """In-memory tensor columns fetched a whole batch at a time (``dataset[name]`` is a column, which the trainer's
    labelled-share sampler reads): a datasets.Dataset would convert 500 x 200 floats per step through Python."""

    def __init__(self, **columns: Tensor) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, key: Any) -> Any:
        return self.columns[key] if isinstance(key, str) else {k: v[key] for k, v in self.columns.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        rows = torch.as_tensor(indices)
        return {k: v[rows] for k, v in self.columns.items()}


def _whole_batch(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return batch


def _train(
    context: DemoContext,
    setup: OODUnlabeledSetup,
    features: Tensor,
    labels: Tensor,
    init: Tensor,
    **rss: Any,
) -> UnitLinear:
    from hf_margin.trainers import RobustSelfTrainer, RobustSelfTrainingConfig

    rows = _Columns(features=features, labels=labels)
    args = RobustSelfTrainingConfig(
        str(context.out_dir / "runs" / ENTRY),
        max_steps=setup.steps,
        per_device_train_batch_size=min(setup.batch_size, len(rows)),
        learning_rate=setup.learning_rate,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        remove_unused_columns=False,  # the batches come whole from _Columns
        rss_loss="ramp",
        rss_ramp_scale=setup.ramp_scale,
        rss_input_name="features",
        **rss,
    )
    model = UnitLinear(init)
    RobustSelfTrainer(model, args, train_dataset=rows, data_collator=_whole_batch).train()
    return model


def _accuracy(model: UnitLinear, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float(((model(x)["logits"][:, 0] > 0).long() == y).float().mean())


def run_seed(context: DemoContext, setup: OODUnlabeledSetup, seed: int) -> dict[str, float]:
    """Test accuracies of one data draw: ERM (m and large m) and RSS per shift, non-robust and robust."""
    from hf_margin.trainers.robust_self_training import UNLABELED

    mixture = Mixture.draw(setup.dim, seed)
    x, y = mixture.sample(setup.labeled)
    x_test, y_test = mixture.sample(setup.test_rows)
    x_large, y_large = mixture.sample(setup.large_labeled)
    init = ((2 * y[:, None] - 1) * x).mean(0)
    init = init / init.norm()
    erm = {"rss_lambda": 0.0, "rss_gamma": math.inf}
    result = {
        "erm": _accuracy(_train(context, setup, x, y, init, **erm), x_test, y_test),
        "erm_large": _accuracy(_train(context, setup, x_large, y_large, init, **erm), x_test, y_test),
    }
    share = setup.labeled / min(setup.batch_size, setup.labeled + setup.unlabeled)
    for alpha in setup.shifts:
        x_u, _ = mixture.sample(setup.unlabeled, alpha)
        features = torch.cat([x, x_u])
        labels = torch.cat([y, torch.full((setup.unlabeled,), UNLABELED)])
        common: dict[str, Any] = {
            "rss_lambda": setup.rss_lambda,
            "rss_warmup_steps": setup.warmup_steps,
            "rss_labeled_share": share,
        }
        for name, gamma in (("rss", math.inf), ("rss_robust", setup.gamma)):
            model = _train(
                context, setup, features, labels, init, rss_gamma=gamma, rss_steps=setup.ascent_steps, **common
            )
            result[f"{name}@{alpha}"] = _accuracy(model, x_test, y_test)
    return result


def _spread(values: list[float]) -> str:
    return f"mean {statistics.mean(values):.3f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.3f} (std)"


def run(context: DemoContext, setup: OODUnlabeledSetup = OODUnlabeledSetup()) -> list[DemoRow]:
    start = time.perf_counter()
    with single_thread():
        runs = [run_seed(context, setup, seed) for seed in range(setup.seeds)]
    seconds = time.perf_counter() - start
    dataset = (
        f"Gaussian mixture, d = {setup.dim}, m = {setup.labeled} labelled + n = {setup.unlabeled} unlabelled, "
        f"{setup.seeds} seeds"
    )
    Path(context.out_dir).mkdir(parents=True, exist_ok=True)
    report = {"setup": asdict(setup), "poster": {**POSTER, "rss": POSTER["rss"]}, "seconds": seconds, "runs": runs}
    (context.out_dir / f"{ENTRY}.json").write_text(json.dumps(report, indent=2, default=str))

    def values(key: str) -> list[float]:
        return [r[key] for r in runs]

    erm = values("erm")
    baseline = f"ERM, m = {setup.labeled}"
    rows = [
        DemoRow(
            ENTRY,
            f"ERM, m = {setup.large_labeled} (reference)",
            baseline,
            "test accuracy",
            statistics.mean(values("erm_large")),
            statistics.mean(erm),
            seconds,
            dataset,
            f"{_spread(values('erm_large'))}; ERM m = {setup.labeled}: {_spread(erm)}; poster: "
            f"{POSTER['erm_large']} vs {POSTER['erm']}",
        )
    ]
    rss_poster: dict[float, float] = POSTER["rss"]  # type: ignore[assignment]
    for alpha in setup.shifts:
        for name, label in (("rss", "RSS, gamma = inf"), ("rss_robust", f"RSS, gamma = {setup.gamma}")):
            poster = rss_poster.get(alpha)
            got = values(f"{name}@{alpha}")
            rows.append(
                DemoRow(
                    ENTRY,
                    f"{label}, alpha = {alpha} ||mu0||",
                    baseline,
                    "test accuracy",
                    statistics.mean(got),
                    statistics.mean(erm),
                    seconds,
                    dataset,
                    _spread(got) + (f"; poster (non-robust): {poster}" if poster is not None else ""),
                )
            )
    return rows
