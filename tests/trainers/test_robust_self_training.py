"""RobustSelfTrainer (RSS, arXiv 2310.00027): lambda = 0 is supervised-only, gamma = inf is the plain loss, the
pseudo-labelled term by hand, warm start, labelled share, a tiny BERT through its input embeddings, bad settings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import datasets
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from hf_margin.functional import wasserstein_robust_loss
from hf_margin.trainers import RobustSelfTrainer, RobustSelfTrainingConfig
from hf_margin.trainers.robust_self_training import UNLABELED


class Classifier(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, classes))

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.net(features)}


def _args(tmp_path: Path, **rss: Any) -> RobustSelfTrainingConfig:
    common: dict[str, Any] = dict(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=8,
        learning_rate=0.05,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        rss_input_name="features",
    )
    return RobustSelfTrainingConfig(**(common | rss))


def _batch(labels: list[int]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"features": torch.randn(len(labels), 4, generator=g), "labels": torch.tensor(labels)}


MIXED = [0, 1, 2, UNLABELED, UNLABELED, 1, UNLABELED]


def _loss(trainer: RobustSelfTrainer, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model = trainer.model
    model.zero_grad()
    loss = trainer.compute_loss(model, dict(batch))
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def test_lambda_zero_is_supervised_only(tmp_path: Path) -> None:
    trainer = RobustSelfTrainer(Classifier(), _args(tmp_path, rss_lambda=0.0, rss_gamma=2.0, rss_steps=5))
    batch = _batch(MIXED)
    keep = torch.tensor(MIXED) != UNLABELED
    mixed, mixed_grads = _loss(trainer, batch)
    labelled, labelled_grads = _loss(trainer, {k: v[keep] for k, v in batch.items()})
    assert mixed.item() == pytest.approx(labelled.item(), abs=1e-6)
    for a, b in zip(mixed_grads, labelled_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_infinite_gamma_is_the_plain_loss_plus_lambda_pseudo_label_loss(tmp_path: Path) -> None:
    trainer = RobustSelfTrainer(Classifier(), _args(tmp_path, rss_lambda=0.5, rss_gamma=math.inf))
    batch = _batch(MIXED)
    loss, _ = _loss(trainer, batch)
    with torch.no_grad():
        logits = trainer.model(batch["features"])["logits"]
    keep = torch.tensor(MIXED) != UNLABELED
    supervised = F.cross_entropy(logits[keep], batch["labels"][keep])
    pseudo = F.cross_entropy(logits[~keep], logits[~keep].argmax(1))
    assert loss.item() == pytest.approx((supervised + 0.5 * pseudo).item(), abs=1e-6)


def test_robust_terms_use_gamma_and_gamma_prime(tmp_path: Path) -> None:
    args = _args(tmp_path, rss_lambda=2.0, rss_gamma=3.0, rss_gamma_unlabeled=0.5, rss_steps=6)
    trainer = RobustSelfTrainer(Classifier(), args)
    batch = _batch(MIXED)
    loss, _ = _loss(trainer, batch)
    net = trainer.model
    keep = torch.tensor(MIXED) != UNLABELED
    x, y = batch["features"], batch["labels"]

    def ce(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(z)["logits"], t, reduction="none")

    with torch.no_grad():
        guesses = net(x[~keep])["logits"].argmax(1)
    supervised = wasserstein_robust_loss(ce, x[keep], y[keep], 3.0, steps=6)
    pseudo = wasserstein_robust_loss(ce, x[~keep], guesses, 0.5, steps=6)
    assert loss.item() == pytest.approx((supervised + 2.0 * pseudo).item(), abs=1e-5)
    assert pseudo.item() > F.cross_entropy(net(x[~keep])["logits"], guesses).item()


def test_warm_start_leaves_out_the_pseudo_labelled_term(tmp_path: Path) -> None:
    trainer = RobustSelfTrainer(Classifier(), _args(tmp_path, rss_lambda=1.0, rss_warmup_steps=3))
    supervised = RobustSelfTrainer(Classifier(), _args(tmp_path, rss_lambda=0.0))
    batch = _batch(MIXED)
    assert _loss(trainer, batch)[0].item() == pytest.approx(_loss(supervised, batch)[0].item(), abs=1e-7)
    trainer.state.global_step = 3
    assert _loss(trainer, batch)[0].item() > _loss(supervised, batch)[0].item()


def _dataset(rows: int, labelled: int) -> datasets.Dataset:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(rows) % 2
    x = torch.randn(rows, 4, generator=g) + 2.0 * (2 * y[:, None] - 1)
    labels = torch.where(torch.arange(rows) < labelled, y, torch.full_like(y, UNLABELED))
    return datasets.Dataset.from_dict({"features": x.tolist(), "labels": labels.tolist()})


class Scorer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 1)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.linear(features)}


def test_ramp_training_with_a_labelled_share(tmp_path: Path) -> None:
    args = _args(tmp_path, rss_loss="ramp", rss_ramp_scale=0.5, rss_labeled_share=0.25, rss_gamma=4.0, max_steps=6)
    trainer = RobustSelfTrainer(Scorer(), args, train_dataset=_dataset(40, 6))
    seen: list[int] = []
    original = trainer.compute_loss

    def record(model: nn.Module, inputs: dict[str, Any], *a: Any, **k: Any) -> Any:
        seen.append(int((inputs["labels"] != UNLABELED).sum()))
        return original(model, inputs, *a, **k)

    trainer.compute_loss = record  # type: ignore[method-assign]
    before = trainer.model.linear.weight.detach().clone()
    result = trainer.train()
    assert seen == [2] * 6, "every batch of 8 holds round(0.25 * 8) labelled rows"
    assert math.isfinite(result.training_loss) and not torch.equal(before, trainer.model.linear.weight)


def test_tiny_bert_is_perturbed_in_its_input_embeddings(tmp_path: Path) -> None:
    config = BertConfig(
        vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, num_labels=2
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    rows = datasets.Dataset.from_dict(
        {
            "input_ids": torch.randint(1, 30, (12, 5), generator=g).tolist(),
            "attention_mask": torch.ones(12, 5, dtype=torch.long).tolist(),
            "labels": [0, 1, 1, 0] + [UNLABELED] * 8,
        }
    )
    args = _args(tmp_path, rss_input_name="inputs_embeds", rss_gamma=1.0, rss_steps=2, max_steps=2)
    result = RobustSelfTrainer(model, args, train_dataset=rows).train()
    assert math.isfinite(result.training_loss)


def test_missing_input_is_named(tmp_path: Path) -> None:
    trainer = RobustSelfTrainer(Classifier(), _args(tmp_path, rss_input_name="pixel_values"))
    with pytest.raises(ValueError, match="rss_input_name"):
        trainer.compute_loss(trainer.model, _batch(MIXED))


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"rss_gamma": -1.0}, "rss_gamma"),
        ({"rss_gamma": "1"}, "rss_gamma"),
        ({"rss_gamma_unlabeled": math.nan}, "rss_gamma_unlabeled"),
        ({"rss_lambda": -0.5}, "rss_lambda"),
        ({"rss_lambda": math.inf}, "rss_lambda"),
        ({"rss_steps": -1}, "rss_steps"),
        ({"rss_warmup_steps": 1.5}, "rss_warmup_steps"),
        ({"rss_step_size": 0.0}, "rss_step_size"),
        ({"rss_gamma": 0.0}, "rss_step_size"),
        ({"rss_loss": "hinge"}, "rss_loss"),
        ({"rss_ramp_scale": 0.0}, "rss_ramp_scale"),
        ({"rss_input_name": ""}, "rss_input_name"),
        ({"rss_labeled_share": 1.0}, "rss_labeled_share"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, settings: dict[str, Any], name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=name):
        _args(tmp_path, **settings)


def test_plain_training_arguments_are_refused(tmp_path: Path) -> None:
    from transformers import TrainingArguments

    with pytest.raises(TypeError, match="RobustSelfTrainingConfig"):
        RobustSelfTrainer(Classifier(), TrainingArguments(str(tmp_path), report_to="none"))  # type: ignore[arg-type]
