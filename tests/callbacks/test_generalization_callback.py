"""GeneralizationMeasuresCallback in a plain transformers Trainer: a tiny BERT built from a config (mapping inputs,
ModelOutput logits) and a float-input MLP (path-norm, distances from initialisation); the values equal
`generalization_measures` on the same logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from hf_margin.callbacks.generalization import GeneralizationMeasuresCallback
from hf_margin.diagnostics.generalization import generalization_measures


class Rows(torch.utils.data.Dataset):
    def __init__(self, key: str, x: torch.Tensor, labels: torch.Tensor) -> None:
        self.key, self.x, self.labels = key, x, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {self.key: self.x[i], "labels": self.labels[i]}


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.net(features)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def arguments(tmp_path: Path) -> TrainingArguments:
    return TrainingArguments(
        str(tmp_path),
        max_steps=2,
        eval_strategy="steps",
        eval_steps=1,
        report_to="none",
        per_device_train_batch_size=4,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        learning_rate=0.05,
    )


def test_logs_the_measures_of_a_tiny_bert_on_each_evaluation(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=3,
    )
    model = BertForSequenceClassification(config)
    ids, labels = torch.randint(0, 40, (12, 6)), torch.tensor([0, 1, 2] * 4)
    callback = GeneralizationMeasuresCallback({"input_ids": ids}, labels, batch_size=5)
    trainer = Trainer(
        model,
        arguments(tmp_path),
        train_dataset=Rows("input_ids", ids, labels),
        eval_dataset=Rows("input_ids", ids, labels),
    )
    trainer.callback_handler.callbacks.insert(0, callback)
    trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    keys = {
        "eval_gm_margin",
        "eval_gm_inverse_margin",
        "eval_gm_log_prod_of_spec_over_margin",
        "eval_gm_fro_dist",
        "eval_gm_log_spec_init_main",
        "eval_gm_param_norm",
    }
    assert len(evaluations) == 2 and all(keys <= set(e) for e in evaluations)
    assert "eval_gm_path_norm" not in evaluations[0], "no input_shape, no path-norm"
    assert evaluations[0]["eval_gm_fro_dist"] > 0, "weights moved from those at train begin"
    assert evaluations[0]["eval_gm_param_norm"] != evaluations[1]["eval_gm_param_norm"], "measured after each step"
    metrics = trainer.evaluate()
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    expected = generalization_measures(model, logits, labels, callback.init_weights)
    for key, value in expected.items():
        assert metrics[f"eval_gm_{key}"] == pytest.approx(value, rel=1e-5), key


def test_path_norm_and_normalisation_with_a_float_input_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MLP()
    x, labels = torch.randn(20, 6), torch.randint(0, 3, (20,))
    callback = GeneralizationMeasuresCallback(x, labels, input_shape=(6,), normalize=True, num_examples=200)
    trainer = Trainer(
        model, arguments(tmp_path), train_dataset=Rows("features", x, labels), eval_dataset=Rows("features", x, labels)
    )
    trainer.add_callback(callback)
    trainer.train()
    model.train()
    values = callback.measure(model)
    assert model.training, "training mode restored"
    with torch.no_grad():
        expected = generalization_measures(
            model.eval(), model(x)["logits"], labels, callback.init_weights, (6,), normalize=True, num_examples=200
        )
    assert values["eval_gm_path_norm_over_margin"] == pytest.approx(expected["path_norm_over_margin"], rel=1e-5)
    assert values["eval_gm_path_norm"] > 0


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="`labels`"):
        GeneralizationMeasuresCallback(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="`batch_size`"):
        GeneralizationMeasuresCallback(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), batch_size=0)
    with pytest.raises(TypeError, match="hold `logits`, got tuple"):
        GeneralizationMeasuresCallback(
            torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), logits_fn=lambda model, chunk: (chunk,)
        ).measure(MLP())
