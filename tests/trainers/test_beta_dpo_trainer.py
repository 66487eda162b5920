"""BetaDPOTrainer: neutral settings give TRL's DPO; the batch beta and filter follow the state; checkpoints keep
the EMA statistics."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from hf_margin.trainers import BetaDPOConfig, BetaDPOTrainer
from tests.trainers.test_madpo_trainer import COMMON
from tests.trainers.tiny_lm import preference_rows, tiny_llama, tiny_tokenizer


def _trainer(tmp_path: Path, **config: object) -> BetaDPOTrainer:
    args = BetaDPOConfig(str(tmp_path), **(COMMON | config))  # type: ignore[arg-type]
    rows = preference_rows()
    rows.pop("margin")
    return BetaDPOTrainer(
        tiny_llama(0),
        ref_model=tiny_llama(1),
        args=args,
        train_dataset=Dataset.from_dict(rows),
        processing_class=tiny_tokenizer(),
    )


def test_neutral_settings_equal_trl_dpo(tmp_path: Path) -> None:
    ours = _trainer(tmp_path / "beta", beta_dpo_alpha=0.0, beta_dpo_keep=1.0)
    rows = preference_rows()
    rows.pop("margin")
    dpo = DPOTrainer(
        tiny_llama(0),
        ref_model=tiny_llama(1),
        args=DPOConfig(str(tmp_path / "dpo"), **COMMON),  # type: ignore[arg-type]
        train_dataset=Dataset.from_dict(rows),
        processing_class=tiny_tokenizer(),
    )
    batch = next(iter(ours.get_train_dataloader()))
    torch.testing.assert_close(ours.compute_loss(ours.model, batch), dpo.compute_loss(dpo.model, batch))


def test_batch_beta_and_filter(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, max_steps=3)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "beta_dpo/beta" in entry]
    assert len(logged) == 3
    assert all(entry["beta_dpo/kept"] == pytest.approx(0.75) for entry in logged)  # int(0.8 * 4) = 3 of 4 pairs
    assert trainer.beta_dpo_state.centre != 0.0


def test_checkpoint_keeps_the_statistics(tmp_path: Path) -> None:
    first = _trainer(tmp_path, max_steps=2, save_strategy="steps", save_steps=2)
    first.train()
    saved = json.loads((tmp_path / "checkpoint-2" / "beta_dpo_state.json").read_text())
    assert saved == {"centre": first.beta_dpo_state.centre, "scale": first.beta_dpo_state.scale}
    second = _trainer(tmp_path, max_steps=2)
    second._load_from_checkpoint(str(tmp_path / "checkpoint-2"))
    assert second.beta_dpo_state.centre == first.beta_dpo_state.centre


def test_bad_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`beta_dpo_keep` must lie in \(0, 1\]"):
        BetaDPOConfig(str(tmp_path), beta_dpo_keep=0.0, bf16=False, use_cpu=True)


def test_only_the_saving_process_writes_the_statistics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = _trainer(tmp_path, max_steps=2, save_strategy="steps", save_steps=2)
    # a process other than the main one (process_index > 0): TrainingArguments.should_save is False there
    monkeypatch.setattr(BetaDPOConfig, "should_save", property(lambda self: False))
    trainer.train()
    assert not (tmp_path / "checkpoint-2" / "beta_dpo_state.json").exists()


def test_non_finite_batch_gives_a_non_finite_loss_and_keeps_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hf_margin.trainers.beta_dpo as beta_dpo

    trainer = _trainer(tmp_path, max_steps=2)
    trainer.model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.compute_loss(trainer.model, batch)
    state = dataclasses.replace(trainer.beta_dpo_state)
    real = beta_dpo.run_trl_loss

    def nan_chosen(*args: object) -> tuple[object, ...]:
        loss, outputs, pairs = real(*args)  # type: ignore[arg-type]
        return loss, outputs, dataclasses.replace(pairs, chosen=pairs.chosen.detach() * float("nan"))

    monkeypatch.setattr(beta_dpo, "run_trl_loss", nan_chosen)
    loss = trainer.compute_loss(trainer.model, batch)
    assert isinstance(loss, torch.Tensor) and not torch.isfinite(loss)
    assert trainer.beta_dpo_state == state  # not poisoned: the next batch and the checkpoint see finite statistics


def test_an_in_memory_dataset_is_reopened_from_the_output_folder_under_several_processes(tmp_path: Path) -> None:
    """TRL caches precomputed reference log-probs next to the dataset's files; an in-memory dataset's would be a
    per-process temporary folder (rank 1 cannot open rank 0's file), so it is first written under output_dir."""
    trainer = _trainer(tmp_path)
    rows = Dataset.from_dict({"x": [1, 2, 3]})
    assert trainer._on_shared_disk(rows, "train") is rows  # one process: unchanged
    trainer.accelerator = type("TwoProcesses", (), {"num_processes": 2, "is_main_process": True})()
    trainer.accelerator.wait_for_everyone = lambda: None  # type: ignore[attr-defined]
    shared = trainer._on_shared_disk(rows, "train")
    folder = tmp_path / "reference_logps" / "train"
    assert Path(shared.cache_files[0]["filename"]).parent == folder
    assert shared["x"] == [1, 2, 3]
    assert trainer._on_shared_disk(shared, "train") is shared  # already on disk: TRL's cache path is shared
