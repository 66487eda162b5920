"""MADPOTrainer on a tiny Llama built locally: equal to TRL's DPO when neutral, weighted otherwise, and correct
under gradient accumulation, checkpoint resume and PEFT."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from hf_margin.functional.preference import madpo_weight
from hf_margin.trainers import MADPOConfig, MADPOTrainer
from tests.trainers.tiny_lm import preference_rows, tiny_llama, tiny_tokenizer

COMMON = {
    "per_device_train_batch_size": 4,
    "bf16": False,
    "gradient_checkpointing": False,
    "use_cpu": True,
    "report_to": [],
    "save_strategy": "no",
    "logging_steps": 1,
    "max_grad_norm": 0.0,
    "optim": "sgd",
    "learning_rate": 0.5,
    "lr_scheduler_type": "constant",
    "seed": 0,
}


def _madpo(tmp_path: Path, data: Dataset | None = None, model_seed: int = 0, **config: object) -> MADPOTrainer:
    model = tiny_llama(model_seed)
    args = MADPOConfig(str(tmp_path), **(COMMON | config))  # type: ignore[arg-type]
    data = data if data is not None else Dataset.from_dict(preference_rows())
    return MADPOTrainer(
        model, ref_model=tiny_llama(1), args=args, train_dataset=data, processing_class=tiny_tokenizer()
    )


def _batch(trainer: MADPOTrainer) -> dict:
    return next(iter(trainer.get_train_dataloader()))


def _loss_and_grads(trainer: DPOTrainer, batch: dict) -> tuple[torch.Tensor, list[torch.Tensor]]:
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]


def test_neutral_weights_equal_trl_sigmoid_dpo(tmp_path: Path) -> None:
    madpo = _madpo(tmp_path / "madpo", c_max=1.0, c_min=1.0)
    args = DPOConfig(str(tmp_path / "dpo"), **COMMON)  # type: ignore[arg-type]
    dpo = DPOTrainer(
        tiny_llama(0),
        ref_model=tiny_llama(1),
        args=args,
        train_dataset=Dataset.from_dict(preference_rows()),
        processing_class=tiny_tokenizer(),
    )
    batch = _batch(madpo)
    madpo_loss, madpo_grads = _loss_and_grads(madpo, batch)
    dpo_loss, dpo_grads = _loss_and_grads(dpo, {k: v for k, v in batch.items() if k != "margin"})
    assert madpo_loss.item() != pytest.approx(0.6931, abs=1e-3)  # policy and reference differ
    torch.testing.assert_close(madpo_loss, dpo_loss)
    assert len(madpo_grads) == len(dpo_grads) > 0
    for ours, theirs in zip(madpo_grads, dpo_grads, strict=True):
        torch.testing.assert_close(ours, theirs)


def test_loss_is_the_weighted_dpo_loss(tmp_path: Path) -> None:
    trainer = _madpo(tmp_path)
    batch = _batch(trainer)
    loss = trainer.compute_loss(trainer.model, batch)
    with torch.no_grad():
        neutral = _madpo(tmp_path / "neutral", c_max=1.0, c_min=1.0)
        neutral.model.load_state_dict(trainer.model.state_dict())
        # Recover the per-pair DPO losses from single-pair batches, then weight them by hand.
        per_pair = []
        for i in range(4):
            one = {k: (v[[i, i + 4]] if v.shape[0] == 8 else v[[i]]) for k, v in batch.items()}
            per_pair.append(neutral.compute_loss(neutral.model, one))
    expected = (madpo_weight(batch["margin"]) * torch.stack(per_pair)).mean()
    torch.testing.assert_close(loss, expected)


def test_margins_reach_the_loss_and_metrics_are_logged(tmp_path: Path) -> None:
    trainer = _madpo(tmp_path, max_steps=2)
    batch = _batch(trainer)
    assert batch["margin"].dtype == torch.float32 and batch["margin"].shape == (4,)
    trainer.train()
    logged = trainer.state.log_history[0]
    for key in (
        "madpo/weight_mean",
        "madpo/weight_min",
        "madpo/weight_max",
        "madpo/amplified",
        "madpo/damped",
        "madpo/target_margin",
        "rewards/margins",
        "logps/chosen",
    ):
        assert key in logged
    assert logged["madpo/weight_min"] <= logged["madpo/weight_mean"] <= logged["madpo/weight_max"]


def _train_params(tmp_path: Path, **config: object) -> list[torch.Tensor]:
    trainer = _madpo(tmp_path, **config)
    trainer.train()
    return [p.detach().clone() for p in trainer.model.parameters()]


def test_gradient_accumulation_equals_the_bigger_batch(tmp_path: Path) -> None:
    accumulated = _train_params(
        tmp_path / "ga", max_steps=1, per_device_train_batch_size=2, gradient_accumulation_steps=2
    )
    big = _train_params(tmp_path / "big", max_steps=1, per_device_train_batch_size=4)
    for a, b in zip(accumulated, big, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_checkpoint_resume_continues_identically(tmp_path: Path) -> None:
    straight = _train_params(tmp_path / "straight", max_steps=4, per_device_train_batch_size=2)
    first = _madpo(
        tmp_path / "resumed", max_steps=2, per_device_train_batch_size=2, save_strategy="steps", save_steps=2
    )
    first.train()
    # Other initial weights: only loading the checkpoint can make the result match.
    second = _madpo(tmp_path / "resumed", model_seed=5, max_steps=4, per_device_train_batch_size=2)
    second.train(resume_from_checkpoint=str(tmp_path / "resumed" / "checkpoint-2"))
    for a, b in zip(straight, [p.detach() for p in second.model.parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_with_a_peft_config(tmp_path: Path) -> None:
    from peft import LoraConfig

    args = MADPOConfig(str(tmp_path), **(COMMON | {"max_steps": 2}))  # type: ignore[arg-type]
    trainer = MADPOTrainer(
        tiny_llama(0),
        args=args,
        train_dataset=Dataset.from_dict(preference_rows()),
        processing_class=tiny_tokenizer(),
        peft_config=LoraConfig(r=2, target_modules=["q_proj", "v_proj"]),
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters() if n in before)


def test_margin_from_the_two_reward_columns(tmp_path: Path) -> None:
    rows = preference_rows()
    margins = rows.pop("margin")
    rows["chosen_reward"] = [m + 1.0 for m in margins]
    rows["rejected_reward"] = [1.0] * len(margins)
    trainer = _madpo(tmp_path, data=Dataset.from_dict(rows))
    torch.testing.assert_close(torch.tensor(trainer.train_dataset["margin"]), torch.tensor(margins))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda rows: rows.pop("margin"), "MADPO needs a `margin` column"),
        (
            lambda rows: rows["margin"].__setitem__(3, float("nan")),
            r"`margin` must be finite; NaN or inf at rows \[3\]",
        ),
        (lambda rows: rows["margin"].__setitem__(5, float("inf")), r"NaN or inf at rows \[5\]"),
        (
            lambda rows: rows["margin"].__setitem__(2, None),
            r"`margin` must have no missing values; missing at rows \[2\]",
        ),
        (
            lambda rows: rows.__setitem__("margin", [str(m) for m in rows["margin"]]),
            r"`margin` must hold numbers, got string",
        ),
        (
            lambda rows: rows.__setitem__("margin", [[m] for m in rows["margin"]]),
            r"`margin` must hold numbers, got list",
        ),
        (lambda rows: [column.clear() for column in rows.values()], r"`train_dataset` is empty"),
    ],
)
def test_bad_margins_raise_a_clear_error(tmp_path: Path, change: object, match: str) -> None:
    rows = preference_rows()
    change(rows)  # type: ignore[operator]
    with pytest.raises(ValueError, match=match):
        _madpo(tmp_path, data=Dataset.from_dict(rows))


def test_unsupported_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"does not support `loss_type=\['ipo'\]`"):
        _madpo(tmp_path, loss_type="ipo")
    with pytest.raises(ValueError, match="0 < c_min <= 1 <= c_max"):
        MADPOConfig(str(tmp_path), c_min=1.5, bf16=False, use_cpu=True)


def test_margin_count_must_match_the_pairs(tmp_path: Path) -> None:
    trainer = _madpo(tmp_path)
    batch = _batch(trainer)
    batch["margin"] = batch["margin"][:3]
    with pytest.raises(ValueError, match=r"`margin` has shape \(3,\) for 4 pairs"):
        trainer.compute_loss(trainer.model, batch)


def test_reference_copy_is_not_the_policy(tmp_path: Path) -> None:
    trainer = _madpo(tmp_path)
    policy = copy.deepcopy(trainer.model.state_dict())
    assert any(not torch.equal(policy[k], v) for k, v in trainer.ref_model.state_dict().items())


def test_normalized_pair_gradient_mode(tmp_path: Path) -> None:
    """Derived mitigation: same loss value; the gradient points along -(g_w/|g_w| - g_l/|g_l|) and has the length
    of the plain loss's gradient |g_w - g_l|, so the weighted chosen log-prob rises and the rejected one falls to
    first order at the usual step size."""
    from hf_margin.trainers._preference import run_trl_loss

    trainer = _madpo(tmp_path, normalized_pair_gradient=True)
    plain = _madpo(tmp_path / "plain")
    batch = _batch(trainer)
    trainer.model.train()
    plain.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    plain_loss = plain.compute_loss(plain.model, batch)
    torch.testing.assert_close(loss, plain_loss)
    loss.backward()
    plain_loss.backward()
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    got = torch.cat([p.grad.flatten() for p in params])
    usual = torch.cat([p.grad.flatten() for p in plain.model.parameters() if p.requires_grad])
    torch.testing.assert_close(got.norm(), usual.norm(), rtol=1e-4, atol=0)  # the usual gradient's length
    trl_batch = {k: v for k, v in batch.items() if k != "margin"}
    pairs = run_trl_loss(trainer, trainer.model, trl_batch, return_outputs=False, num_items_in_batch=None)[2]
    chosen, rejected, margin = pairs.chosen, pairs.rejected, pairs.implicit_margins.detach()
    slopes = madpo_weight(batch["margin"]) * 0.1 * torch.sigmoid(-0.1 * margin) / 4
    g_w = torch.cat([g.flatten() for g in torch.autograd.grad((slopes * chosen).sum(), params, retain_graph=True)])
    g_l = torch.cat([g.flatten() for g in torch.autograd.grad((slopes * rejected).sum(), params)])
    torch.testing.assert_close(usual, -(g_w - g_l), rtol=1e-4, atol=1e-7)  # the slopes are the loss's
    direction = g_w / g_w.norm() - g_l / g_l.norm()
    cosine = torch.nn.functional.cosine_similarity(-got, direction, dim=0)
    torch.testing.assert_close(cosine, torch.tensor(1.0), rtol=0, atol=1e-5)
    assert float(g_w @ -got) > 0 and float(g_l @ -got) < 0  # descent direction: chosen up, rejected down


def test_normalized_pair_surrogate_length_on_aligned_and_opposed_gradients() -> None:
    """|gradient| = |g_w - g_l| whatever the overlap (entangled, orthogonal, anti-aligned), in float64."""
    from hf_margin.trainers._preference import normalized_pair_surrogate

    for g_w, g_l in [((3.0, 0.1), (2.0, 0.0)), ((1.0, 0.0), (0.0, 2.0)), ((1.0, 0.0), (-4.0, 0.0))]:
        param = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
        chosen = (param * torch.tensor(g_w, dtype=torch.float64)).sum().reshape(1)
        rejected = (param * torch.tensor(g_l, dtype=torch.float64)).sum().reshape(1)
        loss = -(chosen - rejected).sum()
        surrogate = normalized_pair_surrogate(loss, chosen, rejected, torch.ones(1, dtype=torch.float64), [param])
        (grad,) = torch.autograd.grad(surrogate, [param])
        difference = torch.tensor(g_w, dtype=torch.float64) - torch.tensor(g_l, dtype=torch.float64)
        torch.testing.assert_close(grad.norm(), difference.norm())
        assert float(surrogate.detach()) == float(loss)


def test_policy_built_from_a_config_without_a_reference_gets_a_clear_error(tmp_path: Path) -> None:
    args = MADPOConfig(str(tmp_path), **COMMON)  # type: ignore[arg-type]
    data = Dataset.from_dict(preference_rows())
    with pytest.raises(ValueError, match=r"ref_model=.*peft_config="):
        MADPOTrainer(tiny_llama(0), args=args, train_dataset=data, processing_class=tiny_tokenizer())
