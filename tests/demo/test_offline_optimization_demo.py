"""The offline-optimisation demo entry (IGNITE, arXiv 2503.04242) on scikit-learn's diabetes data (bundled): the
task's split and normalisation, projected gradient ascent against its closed form, a fair comparison (IGNITE-2 at
lambda = 0 is the plain Trainer bit for bit), an oracle that only labels the data and scores the final designs,
rows and report of a tiny real run, and errors naming the bad setup field."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor

from hf_margin.demo import DemoContext
from hf_margin.demo import offline_optimization as demo

TINY = demo.OfflineOptimizationSetup(
    oracle_trees=20, hidden_size=8, train_steps=4, batch_size=16, top_k=8, ascent_steps=3, seeds=2
)


@pytest.fixture(scope="module")
def task() -> demo.Task:
    return demo.build_task(TINY)


def test_task_keeps_the_lower_half_and_normalises_over_the_full_data(task: demo.Task) -> None:
    x, _ = load_diabetes(return_X_y=True)
    full = torch.from_numpy(x).float()
    scores = task.normalised_score((full - task.x_mean) / task.x_std)
    assert scores.min() == pytest.approx(0.0, abs=1e-6) and scores.max() == pytest.approx(1.0, abs=1e-6)
    assert len(task.offline_y) == 221, "442 distinct scores: 221 lie strictly below the median"
    offline_scores = task.normalised_score(task.offline_x)
    assert offline_scores.max() < np.median(scores), "no offline row reaches the median of the full data"
    labels = task.offline_y * task.label_std + task.label_mean  # the labels are the oracle's scores
    assert np.allclose(task.normalise(labels.double().numpy()), offline_scores, atol=1e-5)
    assert abs(float(task.offline_y.mean())) < 1e-5 and abs(float(task.offline_x.mean(0).abs().max())) < 1e-5
    assert (task.offline_x >= task.lower - 1e-5).all() and (task.offline_x <= task.upper + 1e-5).all()
    assert ((full.min(0).values - task.x_mean) / task.x_std).allclose(task.lower)


class _Linear(torch.nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": features @ self.weight}


def test_ascent_is_projected_gradient_ascent_on_the_surrogate() -> None:
    weight = torch.tensor([1.0, -2.0, 0.0])
    surrogate = _Linear(weight.clone())
    starts = torch.zeros(4, 3)
    lower, upper = torch.full((3,), -1.0), torch.full((3,), 1.0)
    inside = demo.ascend(surrogate, starts, lower, upper, steps=3, learning_rate=0.1)
    assert torch.allclose(inside, (0.3 * weight).expand(4, 3))  # x_T = x_0 + T * lr * w inside the box
    clipped = demo.ascend(surrogate, starts, lower, upper, steps=50, learning_rate=0.1)
    assert torch.equal(clipped, torch.tensor([1.0, -1.0, 0.0]).expand(4, 3))  # stuck on the box's faces
    assert torch.equal(surrogate.weight, weight) and surrogate.weight.grad is None and torch.equal(starts, 0 * starts)


def _parameters(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_ignite_surrogate_differs_from_the_plain_one_that_shares_its_start(task: demo.Task, tmp_path: Path) -> None:
    first, again = demo.Surrogate(10, 8, seed=3), demo.Surrogate(10, 8, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters(), strict=True))
    plain, plain_info = demo.train_surrogate(task, TINY, demo.BASELINE, 3, str(tmp_path))
    ignite, info = demo.train_surrogate(task, TINY, "IGNITE", 3, str(tmp_path))
    assert math.isnan(plain_info["multiplier"]) and info["multiplier"] > 0 and info["gradient_norm"] > 0
    differences = [float((a - b).abs().max()) for a, b in zip(_parameters(plain), _parameters(ignite), strict=True)]
    assert max(differences) > 0, "IGNITE's penalty changed the surrogate"
    # with lambda fixed at 0, IGNITE-2 is the plain Trainer: same start, data, order, steps and learning rate
    neutral = dataclasses.replace(TINY, ignite2_multiplier=0.0)
    same, _ = demo.train_surrogate(task, neutral, "IGNITE-2", 3, str(tmp_path))
    assert all(torch.equal(a, b) for a, b in zip(_parameters(plain), _parameters(same), strict=True))
    with pytest.raises(ValueError, match="`method` must be one of 'IGNITE', 'IGNITE-2', 'plain Trainer', got 'SAM'"):
        demo.train_surrogate(task, TINY, "SAM", 0, str(tmp_path))


def test_tiny_run_rows_report_and_an_oracle_that_never_sees_the_optimiser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[np.ndarray] = []
    predict = GradientBoostingRegressor.predict

    def spy(self: GradientBoostingRegressor, x: Any) -> np.ndarray:
        assert isinstance(x, np.ndarray), "the oracle gets plain arrays, never tensors in a graph"
        seen.append(np.array(x, copy=True))
        return predict(self, x)

    monkeypatch.setattr(GradientBoostingRegressor, "predict", spy)
    rows = demo.run(DemoContext(out_dir=tmp_path), TINY)
    assert [(r.method, r.metric) for r in rows] == [
        ("IGNITE", demo.METRICS["p100"]),
        ("IGNITE", demo.METRICS["p50"]),
        ("IGNITE-2", demo.METRICS["p100"]),
        ("IGNITE-2", demo.METRICS["p50"]),
    ]
    assert all(r.entry == "offline_optimization" and r.baseline == "plain Trainer" for r in rows)
    assert all("diabetes" in r.dataset and r.seconds > 0 for r in rows)
    report = json.loads((tmp_path / "offline_optimization.json").read_text())
    assert report["setup"] == dataclasses.asdict(TINY) and report["offline_rows"] == 221
    assert set(report["runs"]) == {"plain Trainer", "IGNITE", "IGNITE-2"}
    for method, runs in report["runs"].items():
        assert [r["seed"] for r in runs] == [0, 1]
        assert all(r["p100"] >= r["p50"] and np.isfinite(r["training_loss"]) for r in runs)
        summary = report["summary"][method]
        assert summary["p100"]["mean"] == pytest.approx(np.mean([r["p100"] for r in runs]))
        assert summary["minus_baseline"]["p50"] == pytest.approx(
            [r["p50"] - b["p50"] for r, b in zip(runs, report["runs"]["plain Trainer"], strict=True)]
        )
    assert rows[0].ours == report["summary"]["IGNITE"]["p100"]["mean"]
    assert rows[3].baseline_value == report["summary"]["plain Trainer"]["p50"]["mean"]
    # the oracle labels the data once, scores the starts once and each surrogate's final designs once: the training
    # and the ascent never query it
    x, _ = load_diabetes(return_X_y=True)
    assert len(seen) == 2 + TINY.seeds * 3 and np.array_equal(seen[0], x)
    assert all(batch.shape == (TINY.top_k, 10) for batch in seen[1:])
    low, high = x.min(0) - 1e-5, x.max(0) + 1e-5
    assert all(((batch >= low) & (batch <= high)).all() for batch in seen[1:]), "designs stay in the data's box"
    assert not np.array_equal(seen[2], seen[1]), "the designs moved from their starts"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("offline_percentile", 100.0, r"`offline_percentile` must lie in \[1.0, 99.0\], got 100.0"),
        ("train_steps", 0, "`train_steps` must be an integer >= 1, got 0"),
        ("seeds", 2.5, "`seeds` must be an integer >= 1, got 2.5"),
        ("ascent_learning_rate", -0.1, r"`ascent_learning_rate` must be a finite number > 0, got -0.1"),
        ("ignite_rho", 0.0, "`ignite_rho` must be a finite number > 0, got 0.0"),
        ("ignite_epsilon", -1.0, "`ignite_epsilon` must be a finite number >= 0, got -1.0"),
        ("ignite2_multiplier", float("nan"), "`ignite2_multiplier` must be a finite number >= 0, got nan"),
    ],
)
def test_bad_setup_values_name_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        demo.OfflineOptimizationSetup(**{field: value})


def test_more_starts_than_offline_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="`top_k` = 300 exceeds the 221 offline rows"):
        demo.build_task(dataclasses.replace(TINY, top_k=300))
