"""Distillation demo on sklearn's 8x8 digits (real data, offline): a model update with fewer negative flips (MPT)
and Dual-Head KD vs standard KD vs cross-entropy for a small student.

(a) Model update (Ricci et al., arXiv 2511.08322): an old MLP trained on digits 0-4; new 10-class MLPs trained
with plain CE or with MPT (b = 4, focal KL distillation from the old model and from an independently trained CE
reference), both with `MarginPreservingTrainer.compute_loss` (CE: b = 0, no distillation) and the same budget.
Reported: test accuracy, and the negative-flip rate (NFR) / relative NFR against the old model on the old classes'
test samples.

(b) Distillation (Yang et al., arXiv 2411.08937): a 2-hidden-layer MLP teacher, a narrow MLP student trained with
CE, CE + standard KD (T = 4), or Dual-Head KD (`DualHeadModel` with the "mlp" auxiliary head, BinaryKL-Norm with
T = 2, alpha = gamma = 1, gradient alignment: the official CIFAR setting). Reported: test accuracy of the main head.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hf_margin.demo import DemoContext, DemoRow

DATASET = "sklearn digits (8x8)"


@dataclass(frozen=True)
class DistillationSetup:
    """Sizes and budgets of the demo (the defaults took 43 s on two heavily shared cores, load ~8)."""

    old_classes: int = 5
    update_steps: int = 150
    kd_steps: int = 200
    batch_size: int = 128
    learning_rate: float = 3e-3
    student_hidden: int = 8
    teacher_hidden: int = 128
    logit_bias: float = 4.0
    seed: int = 0


class MLP(nn.Module):
    """A ReLU MLP on flattened 8x8 digits; returns ``{"logits": ...}``."""

    def __init__(self, hidden: tuple[int, ...], classes: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        sizes = (64, *hidden)
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(sizes):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(sizes[-1], classes)

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        return {"logits": self.classifier(self.body(features))}


def load_split(seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Digits scaled to [0, 1], split 60/40 stratified by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.4, stratify=digits.target, random_state=seed
    )
    as_x, as_y = (lambda a: torch.tensor(a, dtype=torch.float32)), (lambda a: torch.as_tensor(a, dtype=torch.long))
    return as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test)


def predict(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model.eval()(x)["logits"].argmax(1)


def train_loop(model: nn.Module, x: Tensor, y: Tensor, steps: int, setup: DistillationSetup, step_loss: Any) -> None:
    """Adam on random mini-batches; `step_loss(model, xb, yb)` returns a loss or None (it did its own backward)."""
    g = torch.Generator().manual_seed(setup.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.learning_rate)
    model.train()
    for _ in range(steps):
        rows = torch.randint(len(y), (setup.batch_size,), generator=g)
        optimizer.zero_grad()
        loss = step_loss(model, x[rows], y[rows])
        if loss is not None:
            loss.backward()
        optimizer.step()


def cross_entropy_step(model: nn.Module, xb: Tensor, yb: Tensor) -> Tensor:
    return nn.functional.cross_entropy(model(xb)["logits"], yb)


def model_update(data: tuple[Tensor, ...], setup: DistillationSetup, out_dir: Any) -> dict[str, dict[str, float]]:
    """(a): CE vs MPT for the 5 -> 10 class update, both with `MarginPreservingTrainer`'s loss."""
    from hf_margin.metrics.negative_flips import negative_flip_metrics
    from hf_margin.trainers.margin_preserving_config import MarginPreservingConfig
    from hf_margin.trainers.margin_preserving_trainer import MarginPreservingTrainer

    x_train, y_train, x_test, y_test = data
    old_rows = y_train < setup.old_classes
    old = MLP((64,), setup.old_classes, setup.seed)
    train_loop(old, x_train[old_rows], y_train[old_rows], setup.update_steps, setup, cross_entropy_step)
    reference = MLP((64,), 10, setup.seed + 1)
    train_loop(reference, x_train, y_train, setup.update_steps, setup, cross_entropy_step)
    runs: dict[str, dict[str, Any]] = {
        "CE": {"logit_bias": 0.0, "distill_from_old": False, "distill_from_new": False},
        "MPT": {"logit_bias": setup.logit_bias},
    }
    old_test = y_test < setup.old_classes
    old_predictions = predict(old, x_test)
    results = {
        "old model (5 classes)": {
            "accuracy on old classes": float((old_predictions == y_test)[old_test].float().mean())
        }
    }
    for name, options in runs.items():
        model = MLP((64,), 10, setup.seed + 2)
        args = MarginPreservingConfig(str(out_dir / "runs" / name), report_to="none", use_cpu=True, **options)
        # The trainer's own loss (teachers frozen, in eval mode) in the demo's fast loop: Trainer.train's per-step
        # overhead is larger than these tiny MLP steps.
        trainer = MarginPreservingTrainer(model, args, old_model=old, new_reference_model=reference)
        train_loop(
            model,
            x_train,
            y_train,
            setup.update_steps,
            setup,
            lambda model, xb, yb, trainer=trainer: trainer.compute_loss(model, {"features": xb, "labels": yb}),
        )
        new_predictions = predict(model, x_test)
        flips = negative_flip_metrics(old_predictions[old_test], new_predictions[old_test], y_test[old_test])
        results[name] = {
            "accuracy": float((new_predictions == y_test).float().mean()),
            "accuracy on old classes": float((new_predictions == y_test)[old_test].float().mean()),
            "NFR": flips["negative_flip_rate"],
            "relative NFR": flips["relative_negative_flip_rate"],
        }
    return results


def distillation(data: tuple[Tensor, ...], setup: DistillationSetup) -> dict[str, dict[str, float]]:
    """(b): a narrow student trained with CE, CE + KD (T = 4) or Dual-Head KD from a wider teacher."""
    from hf_margin.functional.dual_head_kd import aligned_backward, softmax_kd_loss
    from hf_margin.losses.dual_head_kd import DualHeadKDLoss
    from hf_margin.models.dual_head import DualHeadModel

    x_train, y_train, x_test, y_test = data
    teacher = MLP((setup.teacher_hidden, setup.teacher_hidden), 10, setup.seed + 3)
    train_loop(teacher, x_train, y_train, setup.kd_steps, setup, cross_entropy_step)
    teacher.eval()

    def teacher_logits(xb: Tensor) -> Tensor:
        with torch.no_grad():
            return teacher(xb)["logits"]

    def kd_step(model: nn.Module, xb: Tensor, yb: Tensor) -> Tensor:
        logits = model(xb)["logits"]
        return nn.functional.cross_entropy(logits, yb) + softmax_kd_loss(logits, teacher_logits(xb), 4.0)

    dhkd_loss = DualHeadKDLoss(gamma=1.0, alpha=1.0, temperature=2.0)

    def dhkd_step(model: nn.Module, xb: Tensor, yb: Tensor) -> None:
        out = model(features=xb)
        ce, kd = dhkd_loss.terms(out["logits"], out["aux_logits"], teacher_logits(xb), yb)
        aligned_backward(ce, kd, model.parameters())

    results = {"teacher": {"accuracy": float((predict(teacher, x_test) == y_test).float().mean())}}
    for name, step in (("CE", cross_entropy_step), ("KD (T=4)", kd_step), ("Dual-Head KD", dhkd_step)):
        student: nn.Module = MLP((setup.student_hidden,), 10, setup.seed + 4)
        trained = DualHeadModel(student, aux_head="mlp") if name == "Dual-Head KD" else student
        train_loop(trained, x_train, y_train, setup.kd_steps, setup, step)
        results[name] = {"accuracy": float((predict(trained, x_test) == y_test).float().mean())}
    return results


def run(context: DemoContext, setup: DistillationSetup = DistillationSetup()) -> list[DemoRow]:
    data = load_split(setup.seed)
    start = time.perf_counter()
    update = model_update(data, setup, context.out_dir)
    update_seconds = time.perf_counter() - start
    start = time.perf_counter()
    kd = distillation(data, setup)
    kd_seconds = time.perf_counter() - start
    report = {
        "setup": asdict(setup),
        "dataset": DATASET,
        "model_update": update,
        "distillation": kd,
        "seconds": {"model_update": update_seconds, "distillation": kd_seconds},
    }
    (context.out_dir / "distillation.json").write_text(json.dumps(report, indent=2))
    return rows_from_results(update, kd, update_seconds, kd_seconds)


def rows_from_results(
    update: dict[str, dict[str, float]], kd: dict[str, dict[str, float]], update_seconds: float, kd_seconds: float
) -> list[DemoRow]:
    """MPT vs CE (accuracy; 1 - NFR, so that higher is better) and each distillation vs CE (accuracy)."""
    mpt, ce = update["MPT"], update["CE"]
    rows = [
        DemoRow(
            "distillation", "MPT (b=4, KL)", "CE", "accuracy", mpt["accuracy"], ce["accuracy"], update_seconds, DATASET
        ),
        DemoRow(
            "distillation",
            "MPT (b=4, KL)",
            "CE",
            "1 - NFR vs old model (old classes)",
            1 - mpt["NFR"],
            1 - ce["NFR"],
            update_seconds,
            DATASET,
        ),
    ]
    for method in ("KD (T=4)", "Dual-Head KD"):
        rows.append(
            DemoRow(
                "distillation",
                method,
                "CE",
                "student accuracy",
                kd[method]["accuracy"],
                kd["CE"]["accuracy"],
                kd_seconds,
                DATASET,
            )
        )
    return rows
