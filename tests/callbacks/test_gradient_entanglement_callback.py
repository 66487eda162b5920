"""GradientEntanglementCallback inside MADPO and TRL DPO training: metrics reach the logs, per-pair records are
written, the observed log-prob changes agree in sign with the first-order prediction, and training itself is
unchanged by the measurement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from hf_margin.callbacks import GradientEntanglementCallback
from hf_margin.trainers import MADPOConfig, MADPOTrainer
from tests.trainers.test_madpo_trainer import COMMON
from tests.trainers.tiny_lm import preference_rows, tiny_llama, tiny_tokenizer


def _trainer(tmp_path: Path, steps: int = 4) -> MADPOTrainer:
    options = COMMON | {"max_steps": steps, "per_device_train_batch_size": 2}
    args = MADPOConfig(str(tmp_path), **options)  # type: ignore[arg-type]
    return MADPOTrainer(
        tiny_llama(0),
        ref_model=tiny_llama(1),
        args=args,
        train_dataset=Dataset.from_dict(preference_rows()),
        processing_class=tiny_tokenizer(),
    )


def test_metrics_and_records(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)
    examples = [trainer.train_dataset[i] for i in range(3)]
    eval_batch = trainer.data_collator(examples)
    trainer.add_callback(GradientEntanglementCallback(trainer, every_n_steps=2, eval_batch=eval_batch))
    trainer.train()
    measured = [e for e in trainer.state.log_history if "ge/cosine" in e]
    assert [e["step"] for e in measured] == [2, 4]
    for entry in measured:
        assert -1 <= entry["ge/cosine"] <= 1 and entry["ge/norm_chosen"] > 0
        assert entry["ge/ideal"] + entry["ge/both_down"] + entry["ge/both_up"] == pytest.approx(1)
        assert entry["ge/eval_ideal"] + entry["ge/eval_both_down"] + entry["ge/eval_both_up"] == pytest.approx(1)
        assert entry["ge/seconds"] > 0
    assert "ge/eval_dlogp_chosen" in measured[1] and "ge/eval_dlogp_chosen" not in measured[0]
    records = [json.loads(line) for line in (tmp_path / "gradient_entanglement.jsonl").read_text().splitlines()]
    pairs = [r for r in records if r["kind"] == "pair"]
    assert len(pairs) == 2 * 3 and {r["step"] for r in pairs} == {2, 4}
    assert [r["step"] for r in records if r["kind"] == "batch"] == [2, 4]
    assert {"inner", "cosine", "condition", "case", "logp_chosen"} <= set(pairs[0])


def test_the_measurement_does_not_change_training(tmp_path: Path) -> None:
    plain = _trainer(tmp_path / "plain")
    plain.train()
    watched = _trainer(tmp_path / "watched")
    watched.add_callback(GradientEntanglementCallback(watched, every_n_steps=1))
    watched.train()
    for a, b in zip(plain.model.parameters(), watched.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_works_with_trl_dpo_and_ipo(tmp_path: Path) -> None:
    rows = preference_rows()
    rows.pop("margin")
    for loss_type in ("sigmoid", "ipo"):
        args = DPOConfig(str(tmp_path / loss_type), **(COMMON | {"max_steps": 2, "loss_type": loss_type}))  # type: ignore[arg-type]
        trainer = DPOTrainer(
            tiny_llama(0),
            ref_model=tiny_llama(1),
            args=args,
            train_dataset=Dataset.from_dict(rows),
            processing_class=tiny_tokenizer(),
        )
        trainer.add_callback(GradientEntanglementCallback(trainer, every_n_steps=1, params=["q_proj", "v_proj"]))
        trainer.train()
        assert any("ge/condition" in e for e in trainer.state.log_history)


def test_bad_arguments(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)
    with pytest.raises(ValueError, match="`every_n_steps` must be >= 1"):
        GradientEntanglementCallback(trainer, every_n_steps=0)
    with pytest.raises(ValueError, match="`eval_batch` must be a collated preference batch"):
        GradientEntanglementCallback(trainer, eval_batch={"input_ids": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="no parameters match"):
        GradientEntanglementCallback(trainer, every_n_steps=1, params=["nothing"])._parameters(trainer.model)


def test_plots_and_cli(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from hf_margin.cli import main
    from hf_margin.diagnostics.gradient_entanglement import token_gradient_cosines
    from hf_margin.diagnostics.plots import plot_token_cosines

    trainer = _trainer(tmp_path)
    eval_batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    trainer.add_callback(GradientEntanglementCallback(trainer, every_n_steps=2, eval_batch=eval_batch))
    trainer.train()
    assert main(["plot-entanglement", str(tmp_path)]) == 0
    assert (tmp_path / "gradient_entanglement.png").read_bytes()[:4] == b"\x89PNG"
    ids = eval_batch["input_ids"][0][eval_batch["attention_mask"][0].bool()]
    cosines = token_gradient_cosines(trainer.model, ids, ids, 3, list(trainer.model.parameters()))
    words = [str(i) for i in ids[3:].tolist()]
    assert plot_token_cosines(cosines, words, words, tmp_path / "tokens.png").stat().st_size > 0
    assert main(["plot-entanglement", str(tmp_path / "nowhere")]) == 1
