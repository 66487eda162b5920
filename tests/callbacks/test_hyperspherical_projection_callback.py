"""HypersphericalProjectionCallback: Trainer steps end with unit-norm class vectors, and gradient accumulation gives
the same projected weights as the bigger batch (the step without projection leaves the sphere: tests/heads)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from hf_margin import MarginHeadConfig, MarginHeadModel
from hf_margin.callbacks import HypersphericalProjectionCallback
from tests.models.test_margin_head_model import _bert_config, _toy_dataset


def _trained(tmp_path: Path, callbacks: list, accumulation: int = 1) -> MarginHeadModel:
    torch.manual_seed(0)
    config = MarginHeadConfig(backbone_config=_bert_config(), head_type="hyperspherical", embedding_size=8)
    config.num_labels = 4
    model = MarginHeadModel(config)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=8 // accumulation,
        gradient_accumulation_steps=accumulation,
        learning_rate=0.5,
        optim="sgd",
        lr_scheduler_type="constant",
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        max_grad_norm=0.0,
    )
    Trainer(model=model, args=args, train_dataset=_toy_dataset(), callbacks=callbacks).train()
    return model


def test_unit_norm_after_trainer_steps_projected_once_per_accumulated_update(tmp_path: Path) -> None:
    callback = [HypersphericalProjectionCallback()]
    accumulated = _trained(tmp_path / "ga", callback, accumulation=2).head.weight.detach()
    big = _trained(tmp_path / "big", callback).head.weight.detach()
    torch.testing.assert_close(accumulated.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(accumulated, big, rtol=1e-5, atol=1e-6)
