"""hf_margin's callbacks added to a plain transformers `Trainer` in an ordinary user script: a classifier whose
loss is LDAM (re-weighted by DRWCallback from the second epoch), with the generalization measures and the
embedding geometry logged at every evaluation."""

from __future__ import annotations

from pathlib import Path

import datasets
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_margin.callbacks import DRWCallback, EmbeddingGeometryCallback, GeneralizationMeasuresCallback
from hf_margin.losses import LDAMLoss


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.head(self.body(features))}


def rows(n: int, seed: int) -> datasets.Dataset:
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0] * (n // 2) + [1] * (n // 3) + [2] * (n - n // 2 - n // 3))
    features = torch.randn(3, 6, generator=g)[labels] + torch.randn(n, 6, generator=g)
    return datasets.Dataset.from_dict({"features": features.tolist(), "labels": labels.tolist()})


def test_drw_generalization_and_geometry_callbacks_in_a_plain_trainer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    train, test = rows(48, 0), rows(24, 1)
    counts = torch.bincount(torch.tensor(train["labels"])).tolist()
    loss = LDAMLoss(counts, max_m=0.5, scale=5.0)
    model = Classifier()
    sample_x, sample_y = torch.tensor(train["features"][:16]), torch.tensor(train["labels"][:16])
    args = TrainingArguments(
        str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=16,
        eval_strategy="epoch",
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        learning_rate=1e-2,
        seed=0,
    )
    trainer = Trainer(
        model,
        args,
        train_dataset=train,
        eval_dataset=test,
        compute_loss_func=lambda outputs, labels, num_items_in_batch=None: loss(outputs["logits"], labels),
        callbacks=[
            DRWCallback(loss, switch_epoch=1, beta=0.999),
            GeneralizationMeasuresCallback(sample_x, sample_y),
            EmbeddingGeometryCallback(sample_x, sample_y, embed_fn=lambda m, chunk: m.body(chunk)),
        ],
    )
    assert torch.equal(loss.class_weights, torch.ones(3))
    trainer.train()
    assert loss.class_weights[2] > loss.class_weights[0]  # DRW switched on in epoch 2: the rarer class weighs more
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluations) == 2
    for entry in evaluations:
        assert any(key.startswith("eval_gm_") for key in entry)
        assert entry["eval_uniformity"] <= 0 and -1 <= entry["eval_tolerance"] <= 1
