"""The metric-learning losses under a plain transformers `Trainer`, through its `compute_loss_func` hook: the model
returns embeddings as its output, the loss gets the labels (what a user writes in an existing HF script)."""

from __future__ import annotations

from pathlib import Path

import datasets
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_margin.losses import MultiSimilarityLoss, MultiSimilarityMiner, ThresholdConsistentMarginLoss


class Embedder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.net(features)}


def rows(n: int = 64) -> datasets.Dataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 4
    centres = torch.randn(4, 8, generator=g)
    features = centres[labels] + 0.8 * torch.randn(n, 8, generator=g)
    return datasets.Dataset.from_dict({"features": features.tolist(), "labels": labels.tolist()})


def test_multi_similarity_with_tcm_trains_under_a_plain_trainer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, data = Embedder(), rows()
    miner, loss = MultiSimilarityMiner(), ThresholdConsistentMarginLoss(base_loss=MultiSimilarityLoss())

    def metric_loss(outputs: dict[str, torch.Tensor], labels: torch.Tensor, num_items_in_batch: object = None):
        embeddings = outputs["logits"]
        return loss(embeddings, labels, indices_tuple=miner(embeddings, labels))

    def full_loss() -> float:
        with torch.no_grad():
            x = torch.tensor(data["features"])
            y = torch.tensor(data["labels"])
            return float(metric_loss(model(x), y))

    before = full_loss()
    args = TrainingArguments(
        str(tmp_path),
        max_steps=30,
        per_device_train_batch_size=32,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    Trainer(model, args, train_dataset=data, compute_loss_func=metric_loss).train()
    assert full_loss() < before
