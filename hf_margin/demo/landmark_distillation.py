"""Demo entry: a small regression student distilled with KD-Loss from a Tough and a Tolerant teacher ("Facial
Landmark Points Detection Using Knowledge Distillation-Based Neural Networks", Fard & Mahoor, arXiv 2111.07047)
against the same student trained alone and with plain KD.

Not the paper's task. The paper regresses facial landmarks (300W, COFW, WFLW) with EfficientNet teachers and a
MobileNetV2 student; no landmark data set installs offline here. The closest honest real-data check is another
multi-output coordinate regression: statsmodels' weekly Mauna Loa CO2 record (1958-2001, gaps interpolated), where
the `horizon` "coordinates" of a sample are the changes over each of the next 1..`horizon` weeks from the last
`window` weeks (relative to the latest value). Inputs and targets are divided by one scale each, fitted on the
training part (one scale for every coordinate, like the paper's normalised landmark coordinates); samples whose
targets reach `split_year` train, samples starting in or after it test. What carries over from landmarks: a vector
of correlated coordinates whose joint shape is low-dimensional. What does not: images, spatial structure, and the
size of the models and the data.

- Tough teacher: an MLP (`teacher_layers` x `teacher_hidden`, GELU) trained with MSE on the real targets.
- Tolerant teacher: the same MLP trained with MSE on soft targets. The paper makes soft landmarks with an active
  shape model (PCA); the spec pins down no more than that (which components, any clipping: not found), so our
  choice is the PCA part of an ASM: each training target vector is projected onto the mean plus the top
  `soft_components` principal components of the training targets (`soft_targets`).
- Teachers are trained first (seed `seed`), then frozen (``requires_grad`` off, eval mode); their predictions on the
  training rows are computed once and no gradient reaches them.
- Student: a one-hidden-layer MLP of width `student_hidden`, from the same initialisation per seed, with the same
  batches, steps and Adam learning rate in all three arms: ``student alone`` (MSE to the ground truth; the paper's
  L_main needs the Tolerant teacher's d, so the no-teacher baseline uses MSE), ``plain KD`` (MSE to the ground
  truth + `kd_weight` x MSE to the Tough teacher) and ``KD-Loss (Tough + Tolerant)`` (`LandmarkKDLoss` with the
  official code's defaults: 2 L_main + ALoss_tough + ALoss_tolerant).
- Metrics on the held-out years, lower is better: the mean absolute error in ppm over every coordinate, and a
  normalised error (NME here: that MAE divided by the MAE of the persistence forecast "no change", so 1 is
  persistence; the paper's NME divides by the inter-ocular distance, which has no analogue). Mean over `seeds`
  student seeds (initialisation and batch order); the report holds the per-seed values and their spread.
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
from hf_margin.losses.landmark_kd import LandmarkKDLoss

ENTRY = "landmark_distillation"
DATASET = "Mauna Loa CO2 weekly (statsmodels), next weeks as coordinates"
OURS = "KD-Loss (Tough + Tolerant)"
ALONE = "student alone"
PLAIN_KD = "plain KD"
METHODS = (ALONE, PLAIN_KD, OURS)
METRICS = {"mae": "test MAE, ppm (lower is better)", "nme": "test MAE / persistence MAE (lower is better)"}


@dataclass(frozen=True)
class LandmarkDistillationSetup:
    """Every budget knob of the comparison (defaults: about 20 s on 2 shared CPU cores).

    Args:
        window: weeks of history the models see.
        horizon: weeks ahead, the number of "coordinates" per sample.
        split_year: the first held-out year (1960-2000; the record covers 1958-2001).
        soft_components: principal components kept in the Tolerant teacher's soft targets (1..horizon;
            horizon keeps the real targets).
        teacher_hidden: width of each teacher's hidden layers.
        teacher_layers: hidden layers of each teacher.
        student_hidden: width of the student's one hidden layer.
        teacher_steps: Adam steps of each teacher.
        student_steps: Adam steps of each student.
        batch_size: training samples per step (70, as the official code).
        learning_rate: Adam learning rate of teachers and students (1e-3, as the official code).
        kd_weight: weight of the MSE to the Tough teacher in plain KD.
        seeds: student seeds 0..seeds-1 (initialisation and batch order).
        seed: seed of the teachers' initialisation and batches.
    """

    window: int = 52
    horizon: int = 8
    split_year: int = 1990
    soft_components: int = 2
    teacher_hidden: int = 128
    teacher_layers: int = 2
    student_hidden: int = 8
    teacher_steps: int = 1500
    student_steps: int = 1000
    batch_size: int = 70
    learning_rate: float = 1e-3
    kd_weight: float = 1.0
    seeds: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "window",
            "horizon",
            "soft_components",
            "teacher_hidden",
            "teacher_layers",
            "student_hidden",
            "teacher_steps",
            "student_steps",
            "batch_size",
            "seeds",
        ):
            check_positive_int(getattr(self, name), name)
        check_in_range(self.soft_components, "soft_components", 1, self.horizon)
        check_in_range(self.split_year, "split_year", 1960, 2000)
        check_positive(self.learning_rate, "learning_rate")
        if not 0 <= self.kd_weight < float("inf"):
            raise ValueError(f"`kd_weight` must be a finite number >= 0, got {self.kd_weight}")


def load_split(setup: LandmarkDistillationSetup) -> dict[str, Any]:
    """Train/test (history, next-weeks change) pairs of the weekly CO2 record, each divided by a training scale."""
    from hf_margin.demo.data.co2 import co2_windows

    windows = co2_windows(setup.window, setup.horizon, setup.split_year)
    history, change, train, test = windows.history, windows.change, windows.train, windows.test
    x_scale, y_scale = float(history[train].std()), float(change[train].std())
    as_tensor = lambda array, scale: torch.tensor(array / scale, dtype=torch.float32)  # noqa: E731
    return {
        "train_x": as_tensor(history[train], x_scale),
        "train_y": as_tensor(change[train], y_scale),
        "test_x": as_tensor(history[test], x_scale),
        "test_y": as_tensor(change[test], y_scale),
        "y_scale": y_scale,
    }


def soft_targets(targets: Tensor, components: int) -> Tensor:
    """The targets projected onto their mean plus their top `components` principal components (an ASM's PCA part).

    Args:
        targets: (samples, coordinates) training targets; the shape model is fitted on them.
        components: principal components kept, 1..coordinates (all of them give back `targets`).

    Example:
        >>> soft = soft_targets(split["train_y"], 2)
    """
    check_in_range(components, "components", 1, targets.shape[1])
    mean = targets.mean(dim=0)
    basis = torch.linalg.svd(targets - mean, full_matrices=False).Vh[:components]
    return mean + (targets - mean) @ basis.T @ basis


def mlp(inputs: int, hidden: int, layers: int, outputs: int, seed: int) -> nn.Sequential:
    """A GELU MLP with `layers` hidden layers of width `hidden`, initialised from `seed`."""
    torch.manual_seed(seed)
    modules: list[nn.Module] = []
    for width_in in (inputs, *[hidden] * (layers - 1)):
        modules += [nn.Linear(width_in, hidden), nn.GELU()]
    return nn.Sequential(*modules, nn.Linear(hidden, outputs))


def fit(
    model: nn.Module,
    inputs: Tensor,
    loss: Any,
    extras: tuple[Tensor, ...],
    steps: int,
    setup: LandmarkDistillationSetup,
    seed: int,
) -> nn.Module:
    """Adam on ``loss(model(x), *extras[rows])`` over random batches of `inputs` (batch order from `seed`)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(len(inputs), (setup.batch_size,), generator=generator)
        value = loss(model(inputs[rows]), *(extra[rows] for extra in extras))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    return model


def train_teachers(split: dict[str, Any], setup: LandmarkDistillationSetup) -> dict[str, nn.Module]:
    """The Tough (real targets) and Tolerant (soft targets) teachers, trained with MSE, then frozen."""
    targets = {"tough": split["train_y"], "tolerant": soft_targets(split["train_y"], setup.soft_components)}
    teachers: dict[str, nn.Module] = {}
    for name, target in targets.items():
        model = mlp(setup.window, setup.teacher_hidden, setup.teacher_layers, setup.horizon, setup.seed)
        fit(model, split["train_x"], nn.functional.mse_loss, (target,), setup.teacher_steps, setup, setup.seed)
        teachers[name] = model.requires_grad_(False).eval()
    return teachers


def train_student(
    method: str, split: dict[str, Any], teachers: dict[str, nn.Module], setup: LandmarkDistillationSetup, seed: int
) -> nn.Module:
    """A student trained with one of METHODS; the frozen teachers' outputs are computed once, without gradient."""
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}")
    with torch.no_grad():
        tough, tolerant = (teachers[name](split["train_x"]) for name in ("tough", "tolerant"))
    mse = nn.functional.mse_loss
    losses = {
        ALONE: (mse, (split["train_y"],)),
        PLAIN_KD: (lambda p, g, t: mse(p, g) + setup.kd_weight * mse(p, t), (split["train_y"], tough)),
        OURS: (LandmarkKDLoss(), (split["train_y"], tough, tolerant)),
    }
    loss, extras = losses[method]
    student = mlp(setup.window, setup.student_hidden, 1, setup.horizon, seed)
    return fit(student, split["train_x"], loss, extras, setup.student_steps, setup, seed)


def held_out_errors(model: nn.Module, split: dict[str, Any]) -> dict[str, float]:
    """Test MAE in ppm, and that MAE over the persistence forecast's (predicting no change)."""
    with torch.no_grad():
        error = (model(split["test_x"]) - split["test_y"]).abs().mean()
    persistence = split["test_y"].abs().mean()
    return {"mae": float(error) * split["y_scale"], "nme": float(error / persistence)}


def run(context: DemoContext, setup: LandmarkDistillationSetup | None = None) -> list[DemoRow]:
    """The demo entry: teachers, then three students per seed; ``landmark_distillation.json`` and the table rows."""
    setup = setup or LandmarkDistillationSetup()
    split = load_split(setup)
    errors: dict[str, dict[str, list[float]]] = {m: {"mae": [], "nme": []} for m in METHODS}
    seconds = dict.fromkeys(METHODS, 0.0)
    with single_thread():
        start = time.perf_counter()
        teachers = train_teachers(split, setup)
        teacher_seconds = time.perf_counter() - start
        for seed in context.progress(range(setup.seeds), desc="landmark KD demo", unit="seed", leave=False):
            for method in METHODS:
                start = time.perf_counter()
                student = train_student(method, split, teachers, setup, seed)
                seconds[method] += time.perf_counter() - start
                for metric, value in held_out_errors(student, split).items():
                    errors[method][metric].append(value)
    soft = soft_targets(split["train_y"], setup.soft_components)
    summary = {
        m: {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in errors[m].items()} for m in METHODS
    }
    report = {
        "setup": asdict(setup),
        "dataset": DATASET,
        "train_rows": len(split["train_y"]),
        "test_rows": len(split["test_y"]),
        "y_scale_ppm": split["y_scale"],
        "soft_target_mae_ppm": float((soft - split["train_y"]).abs().mean()) * split["y_scale"],
        "teachers": {name: held_out_errors(model, split) for name, model in teachers.items()},
        "teacher_seconds": teacher_seconds,
        "per_seed": errors,
        "summary": summary,
        "student_seconds": seconds,
    }
    context.out_dir.mkdir(parents=True, exist_ok=True)
    (context.out_dir / f"{ENTRY}.json").write_text(json.dumps(report, indent=2))
    return [
        DemoRow(
            ENTRY,
            OURS,
            baseline,
            METRICS[metric],
            summary[OURS][metric]["mean"],
            summary[baseline][metric]["mean"],
            seconds[OURS] / setup.seeds,
            DATASET,
        )
        for baseline in (ALONE, PLAIN_KD)
        for metric in METRICS
    ]
