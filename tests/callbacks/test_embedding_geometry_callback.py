"""EmbeddingGeometryCallback in a plain transformers Trainer with a tiny BERT built from a config: the metrics land
in the evaluation logs, the returned metrics and log_history, with the values `measure` gives; the encode path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from hf_margin.callbacks.embedding_geometry import EmbeddingGeometryCallback
from hf_margin.metrics.embedding_geometry import tolerance, uniformity


class Rows(torch.utils.data.Dataset):
    def __init__(self, ids: torch.Tensor, labels: torch.Tensor) -> None:
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def mean_pooled(model: BertForSequenceClassification, ids: torch.Tensor) -> torch.Tensor:
    return model.bert(input_ids=ids).last_hidden_state.mean(1)


def test_logs_uniformity_and_tolerance_on_each_evaluation(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    ids, labels = torch.randint(0, 40, (12, 6)), torch.tensor([0, 1] * 6)
    callback = EmbeddingGeometryCallback(ids, labels, embed_fn=mean_pooled, batch_size=5)
    args = TrainingArguments(
        str(tmp_path),
        max_steps=2,
        eval_strategy="steps",
        eval_steps=1,
        report_to="none",
        per_device_train_batch_size=4,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model, args, train_dataset=Rows(ids, labels), eval_dataset=Rows(ids, labels))
    trainer.callback_handler.callbacks.insert(0, callback)
    trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluations) == 2 and all({"eval_uniformity", "eval_tolerance"} <= set(e) for e in evaluations)
    assert evaluations[0]["eval_uniformity"] != evaluations[1]["eval_uniformity"], "measured after each step"
    metrics = trainer.evaluate()
    model.eval()
    with torch.no_grad():
        embeddings = mean_pooled(model, ids)
    assert metrics["eval_uniformity"] == pytest.approx(uniformity(embeddings).item(), rel=1e-5)
    assert metrics["eval_tolerance"] == pytest.approx(tolerance(embeddings, labels).item(), rel=1e-5)
    assert -1 <= metrics["eval_tolerance"] <= 1 and metrics["eval_uniformity"] <= 0


class Encoder(torch.nn.Module):
    """A sentence-transformers-like model: `encode(texts, convert_to_tensor=True)`."""

    def encode(self, texts: list[str], convert_to_tensor: bool = True, show_progress_bar: bool = False):
        assert not self.training
        return torch.tensor([[float(len(t)), 1.0] for t in texts])


def test_default_embedding_is_encode_and_training_mode_is_restored() -> None:
    model = Encoder().train()
    values = EmbeddingGeometryCallback(["a", "bb", "a", "bb"], torch.tensor([0, 1, 0, 1]), batch_size=3).measure(model)
    assert model.training and values["eval_tolerance"] == pytest.approx(1.0)  # same-class rows coincide in direction
    with pytest.raises(TypeError, match="`embed_fn`"):
        EmbeddingGeometryCallback(["a", "b"], torch.tensor([0, 0])).measure(torch.nn.Linear(1, 1))
    with pytest.raises(ValueError, match="`labels`"):
        EmbeddingGeometryCallback(["a", "b"], torch.tensor([0]))
