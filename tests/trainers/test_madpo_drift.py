"""Drift test (DESIGN.md: integrations that touch a host's private path are compared with the host's own path):
for every `DPOConfig` option MADPO supports, MADPO with neutral weights (c_max = c_min = 1) and beta-DPO with
neutral settings give TRL's `DPOTrainer` loss, gradients and every logged metric (name and value) on the same
tiny model and batch; every option they do not support is refused when the trainer is built, naming it; and every
`DPOConfig` option of the installed TRL is classified, so a new TRL option fails here until it is looked at."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("trl")
from datasets import Dataset
from peft import LoraConfig
from transformers import TrainingArguments
from trl import DPOConfig, DPOTrainer

from hf_margin.trainers import BetaDPOConfig, BetaDPOTrainer, MADPOConfig, MADPOTrainer
from hf_margin.trainers._preference import UNSUPPORTED_OPTIONS, recorded_pair_logps
from tests.trainers.test_madpo_trainer import COMMON
from tests.trainers.tiny_lm import preference_rows, tiny_llama, tiny_mixtral, tiny_tokenizer

NEUTRAL_MADPO = {"c_max": 1.0, "c_min": 1.0}
NEUTRAL_BETA_DPO = {"beta_dpo_alpha": 0.0, "beta_dpo_keep": 1.0}

# Supported DPOConfig options, each run through both trainers: id -> (config overrides, model factory, setup).
# setup "ref": a separate reference model; "peft": LoRA, the reference is the adapter disabled; "precompute": the
# reference log-probs are precomputed columns.
CASES: dict[str, tuple[dict[str, Any], Callable[[int], Any], str]] = {
    "defaults": ({}, tiny_llama, "ref"),
    "beta": ({"beta": 0.7}, tiny_llama, "ref"),
    "loss_weights": ({"loss_weights": [0.3]}, tiny_llama, "ref"),
    "precompute_ref_log_probs": ({"precompute_ref_log_probs": True, "precompute_ref_batch_size": 2}, tiny_llama, "ref"),
    "peft_reference": ({}, tiny_llama, "peft"),
    "router_aux_loss_coef": ({"router_aux_loss_coef": 0.05}, tiny_mixtral, "ref"),
    "truncation": ({"max_length": 6, "truncation_mode": "keep_start", "pad_to_multiple_of": 4}, tiny_llama, "ref"),
    "sync_ref_model": (
        {"sync_ref_model": True, "ref_model_sync_steps": 1, "ref_model_mixup_alpha": 0.5},
        tiny_llama,
        "ref",
    ),
    "dropout_kept": ({"disable_dropout": False}, tiny_llama, "ref"),
}
# DPOConfig options that change nothing these trainers compute, with the reason.
INERT = {
    "model_init_kwargs": "only used to load a model given by name (same call in TRL)",
    "trust_remote_code": "only used to load a model given by name (same call in TRL)",
    "dataset_num_proc": "TRL's own dataset preparation",
    "pad_token": "TRL's own collator",
    "padding_free": "TRL 1.16 turns it off with a warning; the data path is TRL's",
    "activation_offloading": "TRL's training_step context, not overridden",
    "f_alpha_divergence_coef": "only read with f_divergence_type='alpha_divergence', which is refused",
    "discopop_tau": "only read with loss_type='discopop', which is refused",
}
DRIFT_TESTED = {name for overrides, _, _ in CASES.values() for name in overrides} | {"loss_type", "beta"}


def _rows() -> Dataset:
    return Dataset.from_dict(preference_rows(4))


def _build(trainer_cls: type, config_cls: type, tmp_path: Path, case: str, extra: dict[str, Any]) -> DPOTrainer:
    overrides, make_model, setup = CASES[case]
    args = config_cls(str(tmp_path), **(COMMON | overrides | extra))
    torch.manual_seed(0)  # the same LoRA initialisation for both trainers
    return trainer_cls(
        make_model(0),
        ref_model=make_model(1) if setup == "ref" else None,
        args=args,
        train_dataset=_rows(),
        processing_class=tiny_tokenizer(),
        peft_config=LoraConfig(r=2, target_modules=["q_proj", "v_proj"]) if setup == "peft" else None,
    )


def _step(trainer: DPOTrainer, batch: dict[str, Any]) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, list]]:
    trainer.model.train()
    trainer.model.zero_grad()
    trainer._metrics["train"].clear()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = [p.grad.clone() for p in trainer.model.parameters() if p.requires_grad]
    return loss.detach(), grads, dict(trainer._metrics["train"])


# beta-DPO shares MADPO's seam: its drift is checked on the three reference setups and the MoE aux loss.
RUNS = [(case, "madpo") for case in CASES] + [
    (case, "beta_dpo") for case in ("defaults", "precompute_ref_log_probs", "peft_reference", "router_aux_loss_coef")
]


@pytest.mark.parametrize(("case", "method"), RUNS)
def test_neutral_trainer_equals_trl_dpo(tmp_path: Path, case: str, method: str) -> None:
    trl = _build(DPOTrainer, DPOConfig, tmp_path / "trl", case, {})
    if method == "madpo":
        ours = _build(MADPOTrainer, MADPOConfig, tmp_path / "ours", case, NEUTRAL_MADPO)
    else:
        ours = _build(BetaDPOTrainer, BetaDPOConfig, tmp_path / "ours", case, NEUTRAL_BETA_DPO)
    batch = next(iter(ours.get_train_dataloader()))
    trl_loss, trl_grads, trl_metrics = _step(trl, {k: v for k, v in batch.items() if k != "margin"})
    our_loss, our_grads, our_metrics = _step(ours, batch)

    assert torch.isfinite(trl_loss) and trl_loss.item() > 0
    torch.testing.assert_close(our_loss, trl_loss, rtol=1e-6, atol=1e-7)
    assert len(our_grads) == len(trl_grads) > 0
    for mine, theirs in zip(our_grads, trl_grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)
    assert set(trl_metrics) <= set(our_metrics)
    assert all(name.startswith(("madpo/", "beta_dpo/")) for name in set(our_metrics) - set(trl_metrics))
    for name, values in trl_metrics.items():
        assert our_metrics[name] == pytest.approx(values, rel=1e-6, abs=1e-7), name
    if case == "router_aux_loss_coef":
        assert trl_metrics["aux_loss"][0] > 0  # the MoE aux loss is in both losses
    for name in ("entropy", "num_tokens", "logits/chosen", "mean_token_accuracy", "rewards/margins"):
        assert name in trl_metrics


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("loss_type", ["ipo"]),
        ("ld_alpha", 0.5),
        ("f_divergence_type", "js_divergence"),
        ("use_weighting", True),
        ("label_smoothing", 0.1),
    ],
)
@pytest.mark.parametrize(("trainer_cls", "config_cls"), [(MADPOTrainer, MADPOConfig), (BetaDPOTrainer, BetaDPOConfig)])
def test_unsupported_option_is_refused_naming_it(
    tmp_path: Path, option: str, value: Any, trainer_cls: type, config_cls: type
) -> None:
    args = config_cls(str(tmp_path), **(COMMON | {option: value}))
    with pytest.raises(ValueError, match=rf"does not support `{option}="):
        trainer_cls(
            tiny_llama(0), ref_model=tiny_llama(1), args=args, train_dataset=_rows(), processing_class=tiny_tokenizer()
        )


def test_every_dpo_config_option_is_classified() -> None:
    own = {f.name for f in dataclasses.fields(DPOConfig)} - {f.name for f in dataclasses.fields(TrainingArguments)}
    refused = {option for option, _, _ in UNSUPPORTED_OPTIONS}
    classified = DRIFT_TESTED | refused | set(INERT)
    assert own - classified == set(), "new DPOConfig options: drift-test them or refuse them"
    assert refused.isdisjoint(DRIFT_TESTED - {"loss_type"})  # loss_type: 'sigmoid' is tested, the others refused


def test_a_trl_whose_forwards_differ_is_reported_not_misread(tmp_path: Path) -> None:
    """The seam reads the policy's and the reference's fused forwards; if TRL ran another number of them (a
    changed `_compute_loss`), it says so instead of pairing the wrong outputs."""
    trainer = _build(MADPOTrainer, MADPOConfig, tmp_path, "defaults", NEUTRAL_MADPO)
    batch = next(iter(trainer.get_train_dataloader()))
    expected = r"expected 2 fused forward pass\(es\).*saw 1.*tested range"
    with pytest.raises(RuntimeError, match=expected), recorded_pair_logps(trainer, batch):
        trainer.model(input_ids=batch["input_ids"], labels=batch["input_ids"], fused_lm_head=True)
