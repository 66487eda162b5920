"""MarginPreservingTrainer: one SGD step equals a hand step on L_bias + FD(old) + FD(new) (KL and L2 variants,
each FD term dropped), the teachers stay frozen and in eval mode, gradient accumulation equals the bigger batch,
evaluation reports NFR against the old model, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from torch import nn

from hf_margin.functional.negative_flips import focal_distillation_kl, focal_distillation_l2, logit_bias_cross_entropy
from hf_margin.metrics.negative_flips import negative_flip_metrics
from hf_margin.trainers.margin_preserving_config import MarginPreservingConfig
from hf_margin.trainers.margin_preserving_trainer import MarginPreservingTrainer

OLD, NEW = 3, 5


class Classifier(nn.Module):
    def __init__(self, classes: int, seed: int, dropout: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.linear = nn.Linear(4, classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.linear(self.dropout(features)) * 3}


def rows(n: int = 8, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    return Dataset.from_dict({"features": torch.randn(n, 4, generator=g).tolist(),
                              "labels": torch.randint(NEW, (n,), generator=g).tolist()})  # fmt: skip


def config(folder: Path, **kwargs) -> MarginPreservingConfig:
    options = {"per_device_train_batch_size": 8, "max_steps": 1, "learning_rate": 0.5, "optim": "sgd",
               "report_to": "none", "save_strategy": "no", "use_cpu": True, "seed": 0, "disable_tqdm": True,
               "lr_scheduler_type": "constant", "max_grad_norm": 0.0}  # fmt: skip
    return MarginPreservingConfig(str(folder), **(options | kwargs))


def teachers(dropout: float = 0.5) -> tuple[Classifier, Classifier]:
    return Classifier(OLD, 1, dropout), Classifier(NEW, 2, dropout)


def hand_loss(model: nn.Module, data: Dataset, **options) -> torch.Tensor:
    old, reference = (t.eval() for t in teachers())
    batch = data.with_format("torch")[:]
    x, y = batch["features"], batch["labels"]
    z = model(x)["logits"]
    loss = logit_bias_cross_entropy(z, y, range(OLD, NEW), options.get("logit_bias", 4.0))
    fd = focal_distillation_l2 if options.get("distillation") == "l2" else focal_distillation_kl
    if options.get("distill_from_old", True):
        loss = loss + fd(z[:, :OLD], old(x)["logits"], y)
    if options.get("distill_from_new", True):
        loss = loss + fd(z, reference(x)["logits"], y)
    return loss


@pytest.mark.parametrize(
    "options",
    [{}, {"distillation": "l2"}, {"distill_from_old": False}, {"distill_from_new": False, "logit_bias": 1.0}],
    ids=["kl", "l2", "no-old", "no-new"],
)
def test_one_step_equals_a_hand_step(tmp_path: Path, options: dict) -> None:
    data = rows()
    old, reference = teachers()
    model = Classifier(NEW, 0)
    trainer = MarginPreservingTrainer(model, config(tmp_path, **options), old_model=old,
                                      new_reference_model=reference, train_dataset=data)  # fmt: skip
    trainer.train()
    by_hand = Classifier(NEW, 0)
    hand_loss(by_hand, data, **options).backward()
    torch.testing.assert_close(model.linear.weight, by_hand.linear.weight - 0.5 * by_hand.linear.weight.grad)
    assert not old.training and not reference.training, "teachers stay in eval mode (their dropout is off)"
    assert not any(p.requires_grad for p in [*old.parameters(), *reference.parameters()])
    torch.testing.assert_close(old.linear.weight, Classifier(OLD, 1).linear.weight, msg="the old model is frozen")


def test_gradient_accumulation_equals_the_bigger_batch(tmp_path: Path) -> None:
    data = rows()
    big = Classifier(NEW, 0)
    MarginPreservingTrainer(big, config(tmp_path / "big"), *teachers(), train_dataset=data).train()
    accumulated = Classifier(NEW, 0)
    args = config(tmp_path / "ga", per_device_train_batch_size=4, gradient_accumulation_steps=2)
    MarginPreservingTrainer(accumulated, args, *teachers(), train_dataset=data).train()
    torch.testing.assert_close(accumulated.linear.weight, big.linear.weight)
    assert not torch.equal(big.linear.weight, Classifier(NEW, 0).linear.weight)


def test_few_steps_and_evaluation_reports_negative_flips(tmp_path: Path) -> None:
    train, test = rows(32, 0), rows(12, 1)
    old, reference = teachers(0.0)
    model = Classifier(NEW, 0)
    trainer = MarginPreservingTrainer(model, config(tmp_path, max_steps=4, per_device_eval_batch_size=5),
                                      old_model=old, new_reference_model=reference, train_dataset=train,
                                      eval_dataset=test)  # fmt: skip
    trainer.train()
    metrics = trainer.evaluate()
    x, y = torch.tensor(test["features"]), torch.tensor(test["labels"])
    with torch.no_grad():
        new_pred, old_pred = model(x)["logits"].argmax(1), old(x)["logits"].argmax(1)
    counted = y < OLD
    expected = negative_flip_metrics(old_pred[counted], new_pred[counted], y[counted])
    assert metrics["eval_negative_flip_rate"] == pytest.approx(expected["negative_flip_rate"])
    assert metrics["eval_relative_negative_flip_rate"] == pytest.approx(expected["relative_negative_flip_rate"])
    assert metrics["eval_accuracy"] == pytest.approx(float((new_pred == y).float().mean()))
    assert trainer.num_old_classes == OLD


def test_errors(tmp_path: Path) -> None:
    old, reference = teachers()
    with pytest.raises(ValueError, match="`new_reference_model`"):
        MarginPreservingTrainer(Classifier(NEW, 0), config(tmp_path), old_model=old, train_dataset=rows())
    with pytest.raises(TypeError, match="`args`"):
        MarginPreservingTrainer(Classifier(NEW, 0), None, old_model=old, new_reference_model=reference)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`old_model`"):
        MarginPreservingTrainer(Classifier(NEW, 0), config(tmp_path), old_model=None, new_reference_model=reference)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`distillation`"):
        config(tmp_path, distillation="js")
    with pytest.raises(ValueError, match="`logit_bias`"):
        config(tmp_path, logit_bias=-1.0)
    narrow = MarginPreservingTrainer(Classifier(OLD, 0), config(tmp_path), old_model=old, new_reference_model=reference,
                                     train_dataset=rows())  # fmt: skip
    with pytest.raises(ValueError, match="more classes than the old one"):
        narrow.train()
