"""Demo entry: offline model-based optimisation (MBO) with a surrogate trained under IGNITE's gradient-norm constraint
("IGNITE: Incorporating Surrogate Gradient Norm to Improve Offline Optimization", Dao, Nguyen, Truong, Hoang;
arXiv 2503.04242) against the same surrogate trained with the plain transformers `Trainer`. IGNITE trains the
surrogate g_beta subject to rho * ||grad_beta mean_{x in B} g_beta(x)|| <= epsilon by primal-dual steps
(`hf_margin.trainers.ignite`); the demo uses the official scripts' IGNITE and IGNITE-2 values.

The task is built from real data the way Design-Bench builds its Superconductor task (an oracle fitted on the whole
data set stands in for the objective; the offline data is the lower part of the scores). Data: scikit-learn's diabetes
set (442 patients, 10 features, disease progression one year later; bundled, no download). It was chosen over the
statsmodels sets because it is a real regression target on continuous, comparable features, small enough for a
seconds-long run. Sex is one of the 10 features: it is binary in the data and a continuous coordinate of the
design box here. Maximising "progression" is a stand-in objective, not a medical goal.

- Oracle: a `GradientBoostingRegressor` (fixed seed) fitted on ALL 442 rows and their true targets; it stands in
  for the true objective y(x) = oracle(x). It labels the data set once and scores the final designs; neither the
  surrogate's training nor the ascent ever queries it.
- Design space: the box of each feature's minimum and maximum over the full data set; every ascent step is
  clipped to it (projected gradient ascent).
- Offline data: the rows whose oracle score is below the `offline_percentile`-th percentile, with their oracle
  scores as labels (our choice: the surrogate then learns the function that scores the designs, not its noisy
  targets). Features and labels are standardised on the offline rows only.
- Surrogate: a ReLU MLP returning ``logits`` (its prediction) and ``loss`` (MSE; the official IGNITE baselines
  use their own losses, e.g. a Gaussian NLL), trained with `IGNITETrainer`
  (IGNITE; optionally IGNITE-2, a fixed multiplier) and with the plain `Trainer`: same initialisation, data, data
  order, steps and learning rate.
- Optimisation: the top-k offline designs climb the surrogate by T steps of gradient ascent (identical for every
  surrogate); the oracle scores the final designs.
- Metric: Design-Bench's normalised score (y - y_min) / (y_max - y_min), y_min and y_max over the oracle scores of
  the full data set, at the 100th and 50th percentile of the k final designs; mean over seeds (seed = the
  surrogate's initialisation and data order; the task itself is fixed). Higher is better; 1.0 is the best row of
  the full data set; the best offline row's score is the report's ``start_scores["p100"]``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hf_margin._validation import check_in_range, check_positive, check_positive_int
from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread

ENTRY = "offline_optimization"
BASELINE = "plain Trainer"
METRICS = {"p100": "normalised oracle score, 100th percentile", "p50": "normalised oracle score, 50th percentile"}


@dataclass(frozen=True)
class OfflineOptimizationSetup:
    """Every budget knob of the comparison (defaults: about 18 s on 2 CPU cores, imports included).

    Args:
        offline_percentile: rows whose oracle score is below this percentile of all 442 form the offline data.
        oracle_trees: boosting stages of the oracle (`GradientBoostingRegressor`, depth 3, learning rate 0.05).
        hidden_size: width of the surrogate's two hidden ReLU layers.
        train_steps: optimizer steps of every surrogate.
        batch_size: offline rows per step.
        learning_rate: AdamW learning rate of every surrogate (no weight decay, linear decay to 0).
        top_k: starting designs, the best offline rows by their (oracle) label.
        ascent_steps: gradient-ascent steps T on the surrogate.
        ascent_learning_rate: step size of the ascent, in offline-standardised feature units.
        ignite_epsilon: IGNITE's constraint level epsilon (official scripts: 0.1).
        ignite_multiplier_init: IGNITE's initial multiplier lambda_0 (official: 0.001).
        ignite_multiplier_lr: IGNITE's dual step size eta (official: 0.001).
        ignite_rho: IGNITE's constraint weight rho (official: 0.05).
        ignite_radius: IGNITE's finite-difference step r (official: 0.05).
        ignite2: also train IGNITE-2 (a fixed multiplier, no dual step).
        ignite2_multiplier: IGNITE-2's fixed lambda (official: 0.01).
        ignite2_rho: IGNITE-2's rho (official: 0.2).
        ignite2_radius: IGNITE-2's r (official: 0.2).
        seeds: number of seeds (0, 1, ...): each sets the surrogates' initialisation and data order.
    """

    offline_percentile: float = 50.0
    oracle_trees: int = 200
    hidden_size: int = 64
    train_steps: int = 200
    batch_size: int = 32
    learning_rate: float = 0.003
    top_k: int = 64
    ascent_steps: int = 50
    ascent_learning_rate: float = 0.05
    ignite_epsilon: float = 0.1
    ignite_multiplier_init: float = 0.001
    ignite_multiplier_lr: float = 0.001
    ignite_rho: float = 0.05
    ignite_radius: float = 0.05
    ignite2: bool = True
    ignite2_multiplier: float = 0.01
    ignite2_rho: float = 0.2
    ignite2_radius: float = 0.2
    seeds: int = 5

    def __post_init__(self) -> None:
        check_in_range(self.offline_percentile, "offline_percentile", 1.0, 99.0)
        for name in ("oracle_trees", "hidden_size", "train_steps", "batch_size", "top_k", "ascent_steps", "seeds"):
            check_positive_int(getattr(self, name), name)
        for name in (
            "learning_rate",
            "ascent_learning_rate",
            "ignite_multiplier_lr",
            "ignite_rho",
            "ignite_radius",
            "ignite2_rho",
            "ignite2_radius",
        ):
            check_positive(getattr(self, name), name)
        for name in ("ignite_epsilon", "ignite_multiplier_init", "ignite2_multiplier"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ValueError(f"`{name}` must be a finite number >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Task:
    """The offline MBO task: the oracle (never shown to the optimiser) and what the optimiser may see.

    Attributes:
        oracle: the fitted regressor; ``oracle.predict(designs)`` in the data's feature units.
        offline_x: (n, 10) offline designs, standardised on the offline rows.
        offline_y: (n,) their oracle scores, standardised on the offline rows.
        lower, upper: (10,) the design box (full data's per-feature range), in standardised units.
        x_mean, x_std: the offline features' mean and standard deviation (to map designs back for the oracle).
        label_mean, label_std: the offline labels' mean and standard deviation (to map predictions back).
        y_min, y_max: the oracle scores' range over the full data set (Design-Bench normalisation).
    """

    oracle: Any
    offline_x: Tensor
    offline_y: Tensor
    lower: Tensor
    upper: Tensor
    x_mean: Tensor
    x_std: Tensor
    label_mean: float
    label_std: float
    y_min: float
    y_max: float

    def normalised_score(self, designs: Tensor) -> np.ndarray:
        """The oracle's Design-Bench-normalised scores of standardised `designs` (n, 10)."""
        raw = (designs.detach() * self.x_std + self.x_mean).double().numpy()
        return self.normalise(self.oracle.predict(raw))

    def normalise(self, scores: np.ndarray) -> np.ndarray:
        """Design-Bench's normalisation of raw scores: (y - y_min) / (y_max - y_min)."""
        return (scores - self.y_min) / (self.y_max - self.y_min)


def build_task(setup: OfflineOptimizationSetup) -> Task:
    """Fit the oracle on every diabetes row, keep the rows below the percentile as the offline data."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    x, y = load_diabetes(return_X_y=True)
    oracle = GradientBoostingRegressor(
        n_estimators=setup.oracle_trees, max_depth=3, learning_rate=0.05, random_state=0
    ).fit(x, y)
    scores = oracle.predict(x)
    offline = scores < np.percentile(scores, setup.offline_percentile)
    if offline.sum() < setup.top_k:
        raise ValueError(f"`top_k` = {setup.top_k} exceeds the {int(offline.sum())} offline rows")
    features = torch.from_numpy(x).float()
    x_mean, x_std = features[offline].mean(0), features[offline].std(0)
    labels = torch.from_numpy(scores[offline]).float()
    y_min, y_max = float(scores.min()), float(scores.max())
    label_mean, label_std = float(labels.mean()), float(labels.std())
    return Task(
        oracle,
        (features[offline] - x_mean) / x_std,
        (labels - label_mean) / label_std,
        (features.min(0).values - x_mean) / x_std,
        (features.max(0).values - x_mean) / x_std,
        x_mean,
        x_std,
        label_mean,
        label_std,
        y_min,
        y_max,
    )


class Surrogate(nn.Module):
    """A two-hidden-layer ReLU MLP regressor: ``{"logits": g(x)}``, plus ``"loss"`` (MSE) when given labels."""

    def __init__(self, in_features: int, hidden_size: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, 1),
        )

    def forward(self, features: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        logits = self.net(features).squeeze(-1)
        if labels is None:
            return {"logits": logits}
        return {"loss": nn.functional.mse_loss(logits, labels.to(logits.dtype)), "logits": logits}


def train_surrogate(
    task: Task, setup: OfflineOptimizationSetup, method: str, seed: int, out_dir: str
) -> tuple[Surrogate, dict[str, float]]:
    """Train a fresh surrogate (initialised from `seed`) on the offline data with `method`: "IGNITE", "IGNITE-2"
    or `BASELINE`; returns it and its final training loss, multiplier and ||grad G_B|| (NaN for the baseline)."""
    import datasets
    from transformers import PrinterCallback, Trainer, TrainingArguments

    from hf_margin.trainers.ignite import IGNITEConfig, IGNITETrainer

    rows = datasets.Dataset.from_dict({"features": task.offline_x.tolist(), "labels": task.offline_y.tolist()})
    model = Surrogate(task.offline_x.shape[1], setup.hidden_size, seed)
    common: dict[str, Any] = dict(
        output_dir=out_dir,
        max_steps=setup.train_steps,
        per_device_train_batch_size=setup.batch_size,
        learning_rate=setup.learning_rate,
        weight_decay=0.0,
        seed=seed,
        data_seed=seed,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer: Trainer
    if method == BASELINE:
        trainer = Trainer(model, TrainingArguments(**common), train_dataset=rows)
    elif method == "IGNITE":
        args = IGNITEConfig(
            **common,
            ignite_epsilon=setup.ignite_epsilon,
            ignite_multiplier_init=setup.ignite_multiplier_init,
            ignite_multiplier_lr=setup.ignite_multiplier_lr,
            ignite_rho=setup.ignite_rho,
            ignite_radius=setup.ignite_radius,
        )
        trainer = IGNITETrainer(model, args, train_dataset=rows)
    elif method == "IGNITE-2":
        args = IGNITEConfig(
            **common,
            ignite_multiplier_init=setup.ignite2_multiplier,
            ignite_rho=setup.ignite2_rho,
            ignite_radius=setup.ignite2_radius,
            ignite_update_multiplier=False,
        )
        trainer = IGNITETrainer(model, args, train_dataset=rows)
    else:
        raise ValueError(f"`method` must be one of 'IGNITE', 'IGNITE-2', {BASELINE!r}, got {method!r}")
    trainer.remove_callback(PrinterCallback)  # no per-run log lines between the demo's tables
    loss = trainer.train().training_loss
    info = {"training_loss": float(loss), "multiplier": float("nan"), "gradient_norm": float("nan")}
    if isinstance(trainer, IGNITETrainer):
        info.update(multiplier=trainer.multiplier, gradient_norm=trainer.last_gradient_norm)
    return model.eval(), info


def ascend(
    surrogate: nn.Module, starts: Tensor, lower: Tensor, upper: Tensor, steps: int, learning_rate: float
) -> Tensor:
    """Projected gradient ascent on the surrogate alone: x <- clip(x + lr * grad_x g(x), lower, upper), `steps`
    times, from `starts` (k, d). The surrogate's parameters are left untouched."""
    designs = starts.detach().clone()
    for _ in range(steps):
        designs.requires_grad_(True)
        (gradient,) = torch.autograd.grad(surrogate(designs)["logits"].sum(), designs)
        designs = torch.maximum(torch.minimum(designs.detach() + learning_rate * gradient, upper), lower)
    return designs.detach()


def run(context: DemoContext, setup: OfflineOptimizationSetup | None = None) -> list[DemoRow]:
    """The demo entry: oracle scores of the designs found on each surrogate, ``offline_optimization.json`` and the
    table rows ("IGNITE" and, with `ignite2`, "IGNITE-2" against "plain Trainer").

    Example:
        >>> rows = run(DemoContext(out_dir=Path("out")), OfflineOptimizationSetup(seeds=2))
    """
    from threadpoolctl import threadpool_limits

    setup = setup or OfflineOptimizationSetup()
    methods = [BASELINE, "IGNITE", *(["IGNITE-2"] if setup.ignite2 else [])]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    with single_thread(), threadpool_limits(1):  # tiny ops and BLAS calls: extra threads only contend
        task = build_task(setup)
        starts = task.offline_x[task.offline_y.argsort(descending=True)[: setup.top_k]]
        for seed in context.progress(range(setup.seeds), desc="offline optimisation demo", unit="seed", leave=False):
            for method in methods:
                begin = time.perf_counter()
                surrogate, info = train_surrogate(task, setup, method, seed, str(context.out_dir / "runs" / ENTRY))
                designs = ascend(
                    surrogate, starts, task.lower, task.upper, setup.ascent_steps, setup.ascent_learning_rate
                )
                seconds = time.perf_counter() - begin
                scores = task.normalised_score(designs)
                with torch.no_grad():
                    predicted = surrogate(designs)["logits"].double().numpy() * task.label_std + task.label_mean
                results[method].append(
                    {
                        **info,
                        "seed": seed,
                        **_percentiles(scores),
                        "mean": float(scores.mean()),
                        "surrogate_mean": float(task.normalise(predicted).mean()),
                        "seconds": seconds,
                    }
                )
    dataset = (
        f"sklearn diabetes, GBR oracle on all 442 rows; offline = {len(task.offline_y)} rows below the "
        f"{setup.offline_percentile:g}th percentile, top {setup.top_k} starts"
    )
    summary = _summary(results)
    report = {
        "setup": asdict(setup),
        "dataset": dataset,
        "offline_rows": len(task.offline_y),
        "start_scores": _percentiles(task.normalised_score(starts)),
        "y_min": task.y_min,
        "y_max": task.y_max,
        "summary": summary,
        "runs": results,
    }
    context.out_dir.mkdir(parents=True, exist_ok=True)
    (context.out_dir / f"{ENTRY}.json").write_text(json.dumps(report, indent=2))
    return [
        DemoRow(
            ENTRY,
            method,
            BASELINE,
            label,
            summary[method][key]["mean"],
            summary[BASELINE][key]["mean"],
            float(np.mean([r["seconds"] for r in results[method]])),
            dataset,
        )
        for method in methods[1:]
        for key, label in METRICS.items()
    ]


def _percentiles(scores: np.ndarray) -> dict[str, float]:
    return {"p100": float(np.percentile(scores, 100)), "p50": float(np.percentile(scores, 50))}


def _summary(results: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per method: mean and standard deviation (ddof 0) over seeds of each score, and the per-seed differences
    to the baseline (same seed, so same initialisation and data order)."""
    summary: dict[str, dict[str, Any]] = {}
    for method, runs in results.items():
        values = {key: np.array([r[key] for r in runs]) for key in ("p100", "p50", "mean", "surrogate_mean")}
        summary[method] = {key: {"mean": float(v.mean()), "std": float(v.std())} for key, v in values.items()}
        summary[method]["minus_baseline"] = {
            key: [r[key] - b[key] for r, b in zip(runs, results[BASELINE], strict=True)] for key in METRICS
        }
    return summary
