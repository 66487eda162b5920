"""IGNITETrainer: lambda = 0 is plain training, the multiplier stays >= 0, the penalty reaches the gradients."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_margin.trainers.ignite import IGNITEConfig, IGNITETrainer


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.net(features).squeeze(-1)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.mse_loss(logits, labels)
        return out


def _rows() -> datasets.Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g)
    return datasets.Dataset.from_dict({"features": x.tolist(), "labels": (x.sum(1) * 3).tolist()})


def _common(tmp_path: Path) -> dict[str, object]:
    return dict(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=8,
        learning_rate=0.05,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )


def test_fixed_zero_multiplier_equals_plain_training(tmp_path: Path) -> None:
    plain = Regressor()
    Trainer(plain, TrainingArguments(**_common(tmp_path)), train_dataset=_rows()).train()
    ours = Regressor()
    args = IGNITEConfig(**_common(tmp_path), ignite_multiplier_init=0.0, ignite_update_multiplier=False)
    IGNITETrainer(ours, args, train_dataset=_rows()).train()
    for a, b in zip(plain.parameters(), ours.parameters(), strict=True):
        assert torch.equal(a, b)


def test_constraint_changes_training_and_multiplier_stays_non_negative(tmp_path: Path) -> None:
    plain = Regressor()
    Trainer(plain, TrainingArguments(**_common(tmp_path)), train_dataset=_rows()).train()
    model = Regressor()
    # a loose constraint (epsilon large) pushes lambda down to 0; clamped it never goes negative
    args = IGNITEConfig(**_common(tmp_path), ignite_multiplier_init=0.5, ignite_multiplier_lr=0.02, ignite_epsilon=10.0)
    trainer = IGNITETrainer(model, args, train_dataset=_rows())
    seen: list[float] = []
    original = trainer.training_step

    def record(*a: object, **k: object) -> torch.Tensor:
        out = original(*a, **k)
        seen.append(trainer.multiplier)
        return out

    trainer.training_step = record  # type: ignore[method-assign]
    trainer.train()
    assert min(seen) == 0.0 and seen[0] > 0 and all(v >= 0 for v in seen)
    assert not all(torch.equal(a, b) for a, b in zip(plain.parameters(), model.parameters(), strict=True))
    unclamped = IGNITEConfig(
        **_common(tmp_path),
        ignite_multiplier_init=0.5,
        ignite_multiplier_lr=0.5,
        ignite_epsilon=10.0,
        ignite_clamp_multiplier=False,
    )
    trainer = IGNITETrainer(Regressor(), unclamped, train_dataset=_rows())
    trainer.train()
    assert trainer.multiplier < 0  # the official code's behaviour


def test_tight_constraint_raises_multiplier(tmp_path: Path) -> None:
    args = IGNITEConfig(**_common(tmp_path), ignite_epsilon=0.0, ignite_multiplier_lr=1.0)
    trainer = IGNITETrainer(Regressor(), args, train_dataset=_rows())
    trainer.train()
    assert trainer.multiplier > args.ignite_multiplier_init and trainer.last_gradient_norm > 0


def test_multiplier_survives_checkpoint_resume(tmp_path: Path) -> None:
    settings = {**_common(tmp_path), "save_strategy": "steps", "save_steps": 3}
    args = IGNITEConfig(**settings, ignite_epsilon=0.0, ignite_multiplier_lr=1.0)
    first = IGNITETrainer(Regressor(), args, train_dataset=_rows())
    first.train()
    resumed = IGNITETrainer(Regressor(), args, train_dataset=_rows())
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert resumed.multiplier == first.multiplier != args.ignite_multiplier_init


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ignite_radius"):
        IGNITEConfig(**_common(tmp_path), ignite_radius=0.0)
    with pytest.raises(ValueError, match="ignite_epsilon"):
        IGNITEConfig(**_common(tmp_path), ignite_epsilon=-1.0)
    with pytest.raises(ValueError, match="ignite_multiplier_init"):
        IGNITEConfig(**_common(tmp_path), ignite_multiplier_init=-1.0)
    with pytest.raises(TypeError, match="args"):
        IGNITETrainer(Regressor(), TrainingArguments(**_common(tmp_path)))  # type: ignore[arg-type]


def test_only_the_saving_process_writes_the_multiplier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {**_common(tmp_path), "save_strategy": "steps", "save_steps": 3}
    args = IGNITEConfig(**settings, ignite_epsilon=0.0, ignite_multiplier_lr=1.0)
    trainer = IGNITETrainer(Regressor(), args, train_dataset=_rows())
    # a process other than the main one (process_index > 0): TrainingArguments.should_save is False there
    monkeypatch.setattr(IGNITEConfig, "should_save", property(lambda self: False))
    trainer.train()
    assert not (tmp_path / "checkpoint-3" / "ignite_multiplier.json").exists()
    monkeypatch.undo()
    assert trainer.args.should_save


def test_several_processes_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The penalty gradient and the multiplier are per process: a launch on 2 processes stops with a clear error."""
    monkeypatch.setattr(IGNITEConfig, "world_size", property(lambda self: 2))
    with pytest.raises(NotImplementedError, match="world_size=2"):
        IGNITETrainer(Regressor(), IGNITEConfig(str(tmp_path), use_cpu=True, report_to="none"))
