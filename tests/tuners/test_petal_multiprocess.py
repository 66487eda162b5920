"""PETAL adapters trained with `PetalTrainer` under DDP (2 gloo processes): the same adapter weights as one process
with the whole batch, and a checkpoint written by the 2-process run resumes on 1 process like an uninterrupted
1-process run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset
from transformers import BertForSequenceClassification, TrainingArguments

from hf_margin.trainers.petal_trainer import PetalTrainer
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
from tests.tuners.test_petal import _bert, _ids, _petal

BATCH = 8  # the global batch; 16 samples make 2 steps per epoch, so the data order across steps matters
SGD = {"optim": "sgd", "learning_rate": 0.1}


def samples() -> Dataset:
    """16 token sequences with a label and a quality each; the qualities spread over [0, 1]."""
    return Dataset.from_dict(
        {"input_ids": _ids(16).tolist(), "labels": [0, 1, 1, 0] * 4, "petal_quality": torch.linspace(0, 1, 16).tolist()}
    )


def petal_classifier(adapter_seed: int = 0) -> Any:
    """A tiny BERT classifier (no dropout) with PETAL on query and value, and a trained classifier layer. BERT's
    forward takes ``**kwargs`` and declares no ``accepts_loss_kwargs``: the case `PetalTrainer` must treat as a
    batch-mean loss (transformers alone would double the step on 2 processes, transformers#47688)."""
    torch.manual_seed(0)
    classifier = BertForSequenceClassification(_bert().config)
    torch.manual_seed(adapter_seed)
    return _petal(classifier, target_modules=["query", "value"], modules_to_save=["classifier"])


def trainable(model: Any) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


def train(
    folder: Path, world: int = 1, adapter_seed: int = 0, checkpoint: Path | None = None, **options: Any
) -> list[torch.Tensor]:
    model = petal_classifier(adapter_seed)
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
    trainer = PetalTrainer(
        model=model, args=TrainingArguments(str(folder), **(settings | options)), train_dataset=samples()
    )
    trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
    assert trainer.state.global_step == trainer.args.max_steps
    return trainable(model)


def _train_one_rank(rank: int, world: int, port: int, folder: str, queue: Any) -> None:
    """SGD for 2 steps; then AdamW for 2 steps saving checkpoint-2 (rank 0 writes
    it). Numpy: outlives the process."""
    join_process_group(rank, world, port)
    results = {
        "sgd": train(Path(folder) / "sgd", world, **SGD),
        "adamw": train(Path(folder) / "adamw", world, **ADAMW, save_strategy="steps", save_steps=2),
    }
    queue.put((rank, {name: [p.numpy() for p in weights] for name, weights in results.items()}))


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, Any], Path]:
    """One 2-process run shared by the tests below: its trainable weights per rank and its output folder."""
    folder = tmp_path_factory.mktemp("petal_ddp")
    return run_ranks(_train_one_rank, str(folder)), folder


@pytest.mark.heavy
def test_two_processes_train_like_one_process_with_the_whole_batch(
    two_processes: tuple[dict[int, Any], Path], tmp_path: Path
) -> None:
    """2 processes x 4 samples for 2 steps equal 1 process x 8 samples on every rank, with SGD (and AdamW). The
    quality is a per-sample input read from the batch's own column (no statistic over the batch), and the loss
    a per-sample mean, so the all-reduced mean of the two ranks' gradients is the whole batch's gradient."""
    results, _ = two_processes
    initial = trainable(petal_classifier())
    for name, options, tolerance in (("sgd", SGD, {}), ("adamw", ADAMW, ADAMW_TOLERANCE)):
        single = train(tmp_path / name, **options)
        assert_all_changed(initial, single)
        for rank in range(2):
            assert_same_weights(single, results[rank][name], **tolerance)


def test_gradient_accumulation_equals_the_whole_batch(tmp_path: Path) -> None:
    """2 micro-batches of 4 accumulated equal one batch of 8 (transformers alone would skip the division by the
    accumulation steps for this model, doubling the step)."""
    whole = train(tmp_path / "whole", max_steps=1, **SGD)
    accumulated = train(
        tmp_path / "accumulated", max_steps=1, per_device_train_batch_size=4, gradient_accumulation_steps=2, **SGD
    )
    assert_all_changed(trainable(petal_classifier()), whole)
    assert_same_weights(whole, accumulated)


def test_a_declared_loss_kwargs_flag_is_kept(tmp_path: Path) -> None:
    model = petal_classifier()
    model.get_base_model().accepts_loss_kwargs = True
    args = TrainingArguments(str(tmp_path), report_to="none", use_cpu=True)
    assert PetalTrainer(model=model, args=args, train_dataset=samples()).model_accepts_loss_kwargs
    assert not PetalTrainer(model=petal_classifier(), args=args, train_dataset=samples()).model_accepts_loss_kwargs


@pytest.mark.heavy
def test_checkpoint_of_two_processes_resumes_on_one_process(
    two_processes: tuple[dict[int, Any], Path], tmp_path: Path
) -> None:
    """AdamW: steps 1-2 on 2 processes x 4 samples (checkpoint-2 written by rank 0: the adapter, the classifier
    copy, the optimizer), steps 3-4 on 1 process x 8 samples, equal 4 uninterrupted steps on 1 process. The
    resumed adapter starts from other weights, and resuming without the optimizer state gives other weights.

    Not carried over: the per-rank ``rng_state_0.pth`` / ``rng_state_1.pth``; the 1-process resume looks for
    ``rng_state.pth`` and goes on without restoring the RNG. Nothing is lost without dropout: the data order comes
    from accelerate's seedable sampler (the Trainer's seed + epoch), the same in both runs.
    """
    _, folder = two_processes
    checkpoint = folder / "adamw" / "checkpoint-2"
    assert_rng_files_per_rank(checkpoint)
    assert (checkpoint / "adapter_model.safetensors").is_file()
    straight = train(tmp_path / "straight", max_steps=4, **ADAMW)
    resumed = train(tmp_path / "resumed", adapter_seed=5, checkpoint=checkpoint, max_steps=4, **ADAMW)
    assert_same_weights(straight, resumed, **ADAMW_TOLERANCE)
    restarted = train(
        tmp_path / "restarted",
        adapter_seed=5,
        max_steps=4,
        **ADAMW,
        checkpoint=without_optimizer_state(checkpoint, tmp_path / "no-optimizer"),
    )
    assert max_difference(straight, restarted) > 100 * ADAMW_TOLERANCE["atol"]


def test_a_causal_lm_keeps_its_item_count_normalisation() -> None:
    """A causal LM's loss divides by the batch's token count (`num_items_in_batch`): the mixin keeps that."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from hf_margin.trainers.petal_trainer import loss_uses_item_count

    config = LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2)
    assert loss_uses_item_count(LlamaForCausalLM(config))
    assert not loss_uses_item_count(petal_classifier())  # peft-wrapped BERT classifier: a batch mean
