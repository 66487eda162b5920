"""MarginPreservingTrainer: one SGD step equals a hand step on L_bias + FD(old) + FD(new) (KL and L2 variants,
each FD term dropped), the teachers stay frozen and in eval mode, gradient accumulation equals the bigger batch,
evaluation reports NFR against the old model on whichever dataset it evaluates (and under 2 processes as under 1),
errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import EvalPrediction

from hf_margin.functional.negative_flips import focal_distillation_kl, focal_distillation_l2, logit_bias_cross_entropy
from hf_margin.metrics.negative_flips import negative_flip_metrics
from hf_margin.trainers.margin_preserving_config import MarginPreservingConfig
from hf_margin.trainers.margin_preserving_trainer import MarginPreservingTrainer
from tests.multiprocess import run_ranks

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
    return Dataset.from_dict(
        {"features": torch.randn(n, 4, generator=g).tolist(), "labels": torch.randint(NEW, (n,), generator=g).tolist()}
    )


def config(folder: Path, **kwargs) -> MarginPreservingConfig:
    options = {
        "per_device_train_batch_size": 8,
        "max_steps": 1,
        "learning_rate": 0.5,
        "optim": "sgd",
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
        "lr_scheduler_type": "constant",
        "max_grad_norm": 0.0,
    }
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
    trainer = MarginPreservingTrainer(
        model, config(tmp_path, **options), old_model=old, new_reference_model=reference, train_dataset=data
    )
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
    trainer = MarginPreservingTrainer(
        model,
        config(tmp_path, max_steps=4, per_device_eval_batch_size=5),
        old_model=old,
        new_reference_model=reference,
        train_dataset=train,
        eval_dataset=test,
    )
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
    narrow = MarginPreservingTrainer(
        Classifier(OLD, 0), config(tmp_path), old_model=old, new_reference_model=reference, train_dataset=rows()
    )
    with pytest.raises(ValueError, match="more classes than the old one"):
        narrow.train()


def flip_metrics(model: nn.Module, old: nn.Module, data: Dataset) -> dict[str, float]:
    """The expected NFR metrics of `model` against `old` on `data`, counted on the old classes."""
    x, y = torch.tensor(data["features"]), torch.tensor(data["labels"])
    with torch.no_grad():
        new_pred, old_pred = model(x)["logits"].argmax(1), old(x)["logits"].argmax(1)
    counted = y < OLD
    return negative_flip_metrics(old_pred[counted], new_pred[counted], y[counted])


def test_evaluation_on_another_dataset_uses_its_own_old_predictions(tmp_path: Path) -> None:
    """evaluate(eval_dataset=other), a dict of datasets, and predict(): NFR on the dataset evaluated each time."""
    first, other = rows(12, 1), rows(17, 2)
    old, reference = teachers(0.0)
    model = Classifier(NEW, 0)
    trainer = MarginPreservingTrainer(
        model,
        config(tmp_path, per_device_eval_batch_size=5),
        old_model=old,
        new_reference_model=reference,
        eval_dataset=first,
    )
    expected = {name: flip_metrics(model, old, data) for name, data in (("first", first), ("other", other))}
    assert expected["first"]["negative_flip_rate"] != expected["other"]["negative_flip_rate"]
    for _ in range(2):  # the second round reuses the cached old predictions
        for name, data in (("first", first), ("other", other), ("first", None)):
            metrics = trainer.evaluate(eval_dataset=data)
            assert metrics["eval_negative_flip_rate"] == pytest.approx(expected[name]["negative_flip_rate"])
            assert metrics["eval_old_error_rate"] == pytest.approx(expected[name]["old_error_rate"])
    assert trainer.compute_metrics is None, "the flip metrics are set for one evaluation at a time"
    both = trainer.evaluate(eval_dataset={"a": first, "b": other})
    assert both["eval_a_negative_flip_rate"] == pytest.approx(expected["first"]["negative_flip_rate"])
    assert both["eval_b_negative_flip_rate"] == pytest.approx(expected["other"]["negative_flip_rate"])
    named = MarginPreservingTrainer(
        model,
        config(tmp_path, per_device_eval_batch_size=5),
        old_model=old,
        new_reference_model=reference,
        eval_dataset={"a": first, "b": other},
    )
    assert named.evaluate()["eval_b_relative_negative_flip_rate"] == pytest.approx(
        expected["other"]["relative_negative_flip_rate"]
    )
    predicted = trainer.predict(other).metrics
    assert predicted["test_negative_flip_rate"] == pytest.approx(expected["other"]["negative_flip_rate"])


def test_a_user_compute_metrics_is_kept(tmp_path: Path) -> None:
    old, reference = teachers(0.0)

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        return {"rows": len(prediction.label_ids)}

    trainer = MarginPreservingTrainer(
        Classifier(NEW, 0),
        config(tmp_path),
        old_model=old,
        new_reference_model=reference,
        eval_dataset=rows(6, 1),
        compute_metrics=compute_metrics,
    )
    metrics = trainer.evaluate()
    assert metrics["eval_rows"] == 6 and "eval_negative_flip_rate" not in metrics


def _evaluate_one_rank(rank: int, world: int, port: int, folder: str, queue) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    old, reference = teachers(0.0)
    trainer = MarginPreservingTrainer(
        Classifier(NEW, 0),
        config(Path(folder), per_device_eval_batch_size=3),
        old_model=old,
        new_reference_model=reference,
        eval_dataset=rows(13, 1),
    )
    metrics = {key: value for key, value in trainer.evaluate().items() if "rate" in key or "accuracy" in key}
    queue.put((rank, (trainer.args.world_size, metrics)))


def test_two_processes_report_the_flips_of_one_process(tmp_path: Path) -> None:
    """gloo, 2 processes x eval batch 3 on 13 rows (the last batch padded, then trimmed): the NFR of one process."""
    old, reference = teachers(0.0)
    single = MarginPreservingTrainer(
        Classifier(NEW, 0),
        config(tmp_path / "single", per_device_eval_batch_size=3),
        old_model=old,
        new_reference_model=reference,
        eval_dataset=rows(13, 1),
    )
    expected = single.evaluate()
    assert expected["eval_negative_flip_rate"] > 0
    results = run_ranks(_evaluate_one_rank, str(tmp_path / "ddp"))
    for rank in range(2):
        world, metrics = results[rank]
        assert world == 2
        assert metrics.keys() == {
            "eval_accuracy",
            "eval_negative_flip_rate",
            "eval_relative_negative_flip_rate",
            "eval_old_error_rate",
            "eval_new_error_rate",
        }
        for key, value in metrics.items():
            assert value == pytest.approx(expected[key]), key
