"""DualHeadModel: the auxiliary head sees the main head's input features, training returns both logits and eval
only the main head's (bit-identical to the wrapped model), "mlp" head layout, the Trainer keeps the wrapped
model's columns, a tiny BERT classifier trains with DualHeadKDLoss under Trainer (with gradient alignment in a
hand loop too), dropping the auxiliary head gives the plain model back (save/load), errors."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from hf_margin.functional.dual_head_kd import aligned_backward, binary_kl_norm
from hf_margin.losses.dual_head_kd import DualHeadKDLoss
from hf_margin.models.dual_head import DualHeadModel, DualHeadOutput, find_classifier
from tests.trainers.tiny_lm import tiny_tokenizer


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(5, 8), nn.ReLU())
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x))


def tiny_bert(num_labels: int = 3) -> tuple[BertForSequenceClassification, Any]:
    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=num_labels,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return BertForSequenceClassification(config), tokenizer


def test_aux_head_on_the_main_heads_features_and_eval_is_the_plain_model() -> None:
    net = Net()
    model = DualHeadModel(net, aux_head="linear")
    x = torch.randn(4, 5)
    out = model(x)
    assert isinstance(out, DualHeadOutput)
    torch.testing.assert_close(out.logits, net(x))
    torch.testing.assert_close(out.aux_logits, model.aux_head(net.backbone(x)))
    model.eval()
    assert torch.equal(model(x), net(x)), "inference: the wrapped model's output, main head only"
    model.aux_in_eval = True
    torch.testing.assert_close(model(x).aux_logits, out.aux_logits)


def test_mlp_head_layout() -> None:
    model = DualHeadModel(Net(), aux_head="mlp", mlp_hidden=12)
    kinds = [type(m) for m in model.aux_head]
    assert kinds == [nn.Linear, nn.Dropout, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert model.aux_head[0].in_features == 8 and model.aux_head[-1].out_features == 3
    assert model(torch.randn(4, 5)).aux_logits.shape == (4, 3)


def test_finds_a_transformers_classifier_and_keeps_its_signature() -> None:
    bert, _ = tiny_bert()
    assert find_classifier(bert)[0] == "classifier"
    model = DualHeadModel(bert)
    assert "input_ids" in inspect.signature(model.forward).parameters, "Trainer keeps the wrapped model's columns"


def test_alignment_routes_ce_to_the_main_head_and_kd_to_the_aux_head() -> None:
    model = DualHeadModel(Net())
    x, y = torch.randn(6, 5), torch.randint(3, (6,))
    teacher = torch.randn(6, 3) * 3
    out = model(x)
    ce, kd = DualHeadKDLoss().terms(out.logits, out.aux_logits, teacher, y)
    aligned_backward(ce, kd, model.parameters())
    aux_only = torch.autograd.grad(binary_kl_norm(model(x).aux_logits, teacher), list(model.aux_head.parameters()))
    for param, expected in zip(model.aux_head.parameters(), aux_only, strict=True):
        torch.testing.assert_close(param.grad, expected)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


class DualHeadKDTrainer(Trainer):
    """The smallest Trainer for DHKD: a teacher-logits column, DualHeadKDLoss on both heads."""

    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, kd_loss: DualHeadKDLoss, **kwargs: Any) -> None:
        self.kd_loss = kd_loss
        super().__init__(*args, **kwargs)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        assert self._signature_columns is not None
        self._signature_columns.append("teacher_logits")

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        inputs = dict(inputs)
        labels, teacher = inputs.pop("labels"), inputs.pop("teacher_logits")
        out = model(**inputs)
        loss = self.kd_loss(out.logits, out.aux_logits, teacher, labels)
        return (loss, out) if return_outputs else loss


def test_tiny_bert_trains_under_trainer_and_drops_its_aux_head(tmp_path: Path) -> None:
    bert, tokenizer = tiny_bert()
    model = DualHeadModel(bert, aux_head="mlp")
    texts = ["the cat sat", "a dog ran far", "the bird", "cat and dog"] * 2
    g = torch.Generator().manual_seed(0)
    data = Dataset.from_dict(
        {
            **tokenizer(texts, padding="max_length", max_length=8),
            "labels": [0, 1, 2, 1] * 2,
            "teacher_logits": (torch.randn(8, 3, generator=g) * 4).tolist(),
        }
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = TrainingArguments(
        str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=3,
        learning_rate=0.1,
        optim="sgd",
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    DualHeadKDTrainer(model, args, train_dataset=data, kd_loss=DualHeadKDLoss(alpha=1.0)).train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert "aux_head.4.weight" in changed and "model.classifier.weight" in changed
    assert "model.bert.encoder.layer.0.output.dense.weight" in changed
    model.eval()
    batch = {k: torch.tensor(v) for k, v in data[:4].items() if k in ("input_ids", "attention_mask")}
    wrapped = model(**batch).logits
    plain = model.drop_auxiliary_head()
    assert isinstance(plain, BertForSequenceClassification)
    assert torch.equal(plain(**batch).logits, wrapped)
    plain.save_pretrained(tmp_path / "student")
    reloaded = BertForSequenceClassification.from_pretrained(tmp_path / "student").eval()
    torch.testing.assert_close(reloaded(**batch).logits, wrapped)
    plain.train()
    assert "aux_logits" not in plain(**batch), "the hook is gone"


def test_errors() -> None:
    with pytest.raises(ValueError, match="`head_name`"):
        DualHeadModel(Net(), head_name="backbone")
    with pytest.raises(ValueError, match="no classification head"):
        DualHeadModel(nn.Sequential(nn.Linear(3, 2)))
    assert DualHeadModel(nn.Sequential(nn.Linear(3, 2)), head_name="0")(torch.randn(2, 3)).aux_logits.shape == (2, 2)
    with pytest.raises(ValueError, match="`aux_head`"):
        DualHeadModel(Net(), aux_head="conv")
    with pytest.raises(TypeError, match="`model`"):
        DualHeadModel("bert")  # type: ignore[arg-type]
