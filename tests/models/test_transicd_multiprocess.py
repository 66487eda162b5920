"""TransICD (LDAM loss, DRW callback) trained with `Trainer` under DDP (2 gloo processes): the same weights as one
process with the whole batch, and a checkpoint written by the 2-process run resumes on 1 process like an
uninterrupted 1-process run, with DRW's class weights switched on in the resumed epoch."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from hf_margin.callbacks.drw import DRWCallback
from hf_margin.models.transicd.modeling_transicd import TransICDModel
from tests.models.test_transicd import batch, tiny_config
from tests.multiprocess import (
    ADAMW,
    ADAMW_TOLERANCE,
    assert_all_changed,
    assert_rng_files_per_rank,
    assert_same_weights,
    join_process_group,
    max_difference,
    run_ranks,
    without_optimizer_state,
)

BATCH = 8  # the global batch; 16 notes make 2 steps per epoch, so the data order across steps matters
SGD = {"optim": "sgd", "learning_rate": 0.1}


@cache
def parameter_names() -> tuple[str, ...]:
    return tuple(name for name, _ in fresh_model().named_parameters())


def without_softmax_shifts(weights: Sequence[np.ndarray | torch.Tensor]) -> list[torch.Tensor]:
    """The weights without the two biases that a softmax cancels: the attention's key bias (softmax over keys)
    and the code-wise attention's score bias (softmax over tokens). Their exact gradient is 0; the float32 one is
    rounding noise (~1e-10), which AdamW normalises into steps of ~lr whose signs follow the summation order, so
    they differ between any two batch splits. They do not change the model's outputs."""
    kept = []
    for name, weight in zip(parameter_names(), weights, strict=True):
        tensor = torch.as_tensor(weight)
        if name.endswith("self_attn.in_proj_bias"):
            query, _, value = tensor.chunk(3)
            kept.append(torch.cat([query, value]))
        elif name != "head.scores.bias":
            kept.append(tensor)
    return kept


def notes() -> Dataset:
    """16 notes of 8 tokens (every third one half padding) with multi-hot labels over the 3 codes."""
    parts = [batch(length=8, seed=seed) for seed in range(6)]
    ids, mask = torch.cat([p[0] for p in parts])[:16], torch.cat([p[1] for p in parts])[:16]
    labels = torch.randint(0, 2, (16, 3), generator=torch.Generator().manual_seed(2)).float()
    return Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist()})


def model_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def fresh_model(seed: int = 0) -> TransICDModel:
    """The tiny TransICD of test_transicd.py (LDAM with label counts [50, 5, 0], no dropout)."""
    torch.manual_seed(seed)
    return TransICDModel(tiny_config())


def train(
    folder: Path, world: int = 1, seed: int = 0, checkpoint: Path | None = None, **options: Any
) -> tuple[list[torch.Tensor], TransICDModel]:
    """Train with DRW switching on at epoch 1 (step 3); the weights and the model."""
    model = fresh_model(seed)
    settings = {
        "per_device_train_batch_size": BATCH // world,
        "max_steps": 2,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "seed": 0,
        "lr_scheduler_type": "constant",
        "max_grad_norm": 0.0,  # no clipping: it would hide a wrong gradient scale
    }
    trainer = Trainer(
        model,
        TrainingArguments(str(folder), **(settings | options)),
        train_dataset=notes(),
        callbacks=[DRWCallback(model.loss_fct, switch_epoch=1, beta=0.999)],
    )
    trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
    assert trainer.state.global_step == trainer.args.max_steps
    return model_weights(model), model


def _train_one_rank(rank: int, world: int, port: int, folder: str, queue: Any) -> None:
    """SGD for 2 steps; then AdamW for 2 steps saving checkpoint-2 (rank 0 writes it). Numpy: outlives the process."""
    join_process_group(rank, world, port)
    results = {
        "sgd": train(Path(folder) / "sgd", world, **SGD)[0],
        "adamw": train(Path(folder) / "adamw", world, **ADAMW, save_strategy="steps", save_steps=2)[0],
    }
    queue.put((rank, {name: [p.numpy() for p in weights] for name, weights in results.items()}))


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, Any], Path]:
    """One 2-process run shared by the tests below: its weights per rank and its output folder."""
    folder = tmp_path_factory.mktemp("transicd_ddp")
    return run_ranks(_train_one_rank, str(folder)), folder


@pytest.mark.heavy
def test_two_processes_train_like_one_process_with_the_whole_batch(
    two_processes: tuple[dict[int, Any], Path], tmp_path: Path
) -> None:
    """2 processes x 4 notes for 2 steps equal 1 process x 8 notes on every rank, with SGD (and AdamW). The LDAM
    margins and DRW weights come from the label counts in the config, not from the batch, and the loss is a mean
    over notes x codes that the model declares (``accepts_loss_kwargs = False``), so the Trainer does not rescale
    it and the all-reduced mean of the two ranks' gradients is the whole batch's gradient. AdamW: see
    `without_softmax_shifts`."""
    results, _ = two_processes
    initial = model_weights(fresh_model())
    for name, options in (("sgd", SGD), ("adamw", ADAMW)):
        single, _ = train(tmp_path / name, **options)
        assert_all_changed(initial, single)
        for rank in range(2):
            if name == "sgd":
                assert_same_weights(single, results[rank][name])
            else:
                assert_same_weights(
                    without_softmax_shifts(single), without_softmax_shifts(results[rank][name]), **ADAMW_TOLERANCE
                )


@pytest.mark.heavy
def test_checkpoint_of_two_processes_resumes_on_one_process(
    two_processes: tuple[dict[int, Any], Path], tmp_path: Path
) -> None:
    """AdamW: steps 1-2 (epoch 0, uniform class weights) on 2 processes x 4 notes, checkpoint-2 written by rank 0;
    steps 3-4 (epoch 1, DRW weights) on 1 process x 8 notes; equal 4 uninterrupted steps on 1 process. The
    resumed model starts from other weights, and resuming without the optimizer state gives other weights.

    Not carried over: the per-rank ``rng_state_0.pth`` / ``rng_state_1.pth``; the 1-process resume looks for
    ``rng_state.pth`` and goes on without restoring the RNG. Nothing is lost without dropout: the data order comes
    from accelerate's seedable sampler (the Trainer's seed + epoch), the same in both runs. DRW's state is the
    epoch, which the callback reads from the restored trainer state at every epoch start.
    """
    _, folder = two_processes
    checkpoint = folder / "adamw" / "checkpoint-2"
    assert_rng_files_per_rank(checkpoint)
    straight, _ = train(tmp_path / "straight", max_steps=4, **ADAMW)
    resumed, model = train(tmp_path / "resumed", seed=5, checkpoint=checkpoint, max_steps=4, **ADAMW)
    assert model.loss_fct.class_weights[2] > model.loss_fct.class_weights[1] > model.loss_fct.class_weights[0]
    assert_same_weights(without_softmax_shifts(straight), without_softmax_shifts(resumed), **ADAMW_TOLERANCE)
    restarted, _ = train(
        tmp_path / "restarted",
        seed=5,
        max_steps=4,
        **ADAMW,
        checkpoint=without_optimizer_state(checkpoint, tmp_path / "no-optimizer"),
    )
    assert max_difference(straight, restarted) > 100 * ADAMW_TOLERANCE["atol"]
