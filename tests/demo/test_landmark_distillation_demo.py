"""The landmark KD-Loss demo entry on the Mauna Loa CO2 record (statsmodels): the multi-week split, the PCA soft
targets, teachers trained before and frozen during the students' training, a tiny real run, and setup checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from hf_margin.demo import DemoContext
from hf_margin.demo import landmark_distillation as demo
from hf_margin.demo._threads import single_thread

TINY = demo.LandmarkDistillationSetup(
    window=8,
    horizon=4,
    teacher_hidden=16,
    student_hidden=4,
    teacher_steps=100,
    student_steps=20,
    learning_rate=1e-2,
    seeds=2,
)


def test_split_is_multi_week_and_scaled_on_the_training_years() -> None:
    split = demo.load_split(TINY)
    assert split["train_x"].shape[1] == 8 and (split["train_x"][:, -1] == 0).all(), "relative to the latest week"
    assert split["train_y"].shape[1] == 4 and split["test_y"].shape[1] == 4
    assert abs(split["train_y"].std().item() - 1) < 1e-3
    assert len(split["train_y"]) > 1000 and len(split["test_y"]) > 300
    # week k+1's change minus week k's is that week's step: consecutive coordinates share the history
    steps = split["train_y"].diff(dim=1).abs().mean()
    assert steps < split["train_y"][:, -1].abs().mean()


def test_soft_targets_are_a_pca_projection() -> None:
    targets = torch.randn(50, 5, generator=torch.Generator().manual_seed(0)) @ torch.randn(5, 5)
    torch.testing.assert_close(demo.soft_targets(targets, 5), targets, atol=1e-5, rtol=1e-5)
    soft = demo.soft_targets(targets, 2)
    torch.testing.assert_close(soft.mean(0), targets.mean(0), atol=1e-5, rtol=1e-5)
    assert torch.linalg.matrix_rank(soft - soft.mean(0)) == 2
    torch.testing.assert_close(demo.soft_targets(soft, 2), soft, atol=1e-5, rtol=1e-5)  # a projection
    assert (soft - targets).abs().mean() > 0.01
    with pytest.raises(ValueError, match="components"):
        demo.soft_targets(targets, 6)


def test_teachers_are_trained_then_frozen_during_the_students_training() -> None:
    split = demo.load_split(TINY)
    with single_thread():
        teachers = demo.train_teachers(split, TINY)
    untrained = demo.mlp(TINY.window, TINY.teacher_hidden, TINY.teacher_layers, TINY.horizon, TINY.seed)
    soft = demo.soft_targets(split["train_y"], TINY.soft_components)
    with torch.no_grad():
        for name, target in (("tough", split["train_y"]), ("tolerant", soft)):
            trained_error = nn.functional.mse_loss(teachers[name](split["train_x"]), target)
            assert trained_error < 0.75 * nn.functional.mse_loss(untrained(split["train_x"]), target), name
    assert not torch.equal(teachers["tough"](split["test_x"]), teachers["tolerant"](split["test_x"]))
    before = {name: {k: v.clone() for k, v in t.state_dict().items()} for name, t in teachers.items()}
    with single_thread():
        for method in demo.METHODS:
            demo.train_student(method, split, teachers, TINY, seed=0)
    for name, teacher in teachers.items():
        assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
        for key, value in teacher.state_dict().items():
            assert torch.equal(value, before[name][key]), f"{name}.{key} changed"
    with pytest.raises(ValueError, match="method"):
        demo.train_student("KD", split, teachers, TINY, seed=0)


def test_tiny_real_run(tmp_path: Path) -> None:
    rows = demo.run(DemoContext(out_dir=tmp_path, progress=lambda items, **_: items), TINY)
    assert [(r.baseline, r.metric) for r in rows] == [
        (b, m) for b in (demo.ALONE, demo.PLAIN_KD) for m in demo.METRICS.values()
    ]
    assert all(r.method == demo.OURS and math.isfinite(r.ours) and r.ours > 0 for r in rows)
    report = json.loads((tmp_path / "landmark_distillation.json").read_text())
    assert report["setup"]["seeds"] == 2 and set(report["teachers"]) == {"tough", "tolerant"}
    per_seed = report["per_seed"]
    assert all(len(per_seed[m]["mae"]) == 2 for m in demo.METHODS)
    first_seed = {per_seed[m]["mae"][0] for m in demo.METHODS}
    assert len(first_seed) == 3, "the three students must differ"
    alone = report["summary"][demo.ALONE]["mae"]["mean"]
    assert rows[0].baseline_value == pytest.approx(alone)
    # NME is MAE over the persistence forecast's MAE: the same ratio for every method
    ratios = {round(per_seed[m]["mae"][0] / per_seed[m]["nme"][0], 6) for m in demo.METHODS}
    assert len(ratios) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("student_steps", 0),
        ("seeds", 1.5),
        ("soft_components", 9),
        ("split_year", 2005),
        ("learning_rate", -1.0),
        ("kd_weight", float("nan")),
        ("batch_size", True),
    ],
)
def test_bad_setup_values_are_rejected_by_name(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        demo.LandmarkDistillationSetup(**{field: value})  # type: ignore[arg-type]
