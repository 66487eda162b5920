"""MADPOTrainer under DDP (2 gloo processes): the same weights as one process with the whole batch, and a
checkpoint written by the 2-process run resumes on 1 process like an uninterrupted 1-process run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("trl")
from datasets import Dataset, concatenate_datasets

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
from tests.trainers.test_madpo_trainer import _madpo
from tests.trainers.tiny_lm import preference_rows

BATCH = 8  # the global batch; 16 pairs make 2 steps per epoch, so the data order across steps matters


def pairs() -> Dataset:
    """16 preference pairs: the 8 of `preference_rows` and the same with chosen and rejected swapped and other
    margins, so that MADPO's weights (amplified, damped, 1 below -tau) all occur."""
    rows = preference_rows()
    margins = [-m / 2 for m in rows["margin"]]
    swapped = rows | {"chosen": rows["rejected"], "rejected": rows["chosen"], "margin": margins}
    return concatenate_datasets([Dataset.from_dict(rows), Dataset.from_dict(swapped)])


def weights(trainer: Any) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.model.parameters()]


def _train_one_rank(rank: int, world: int, port: int, folder: str, queue: Any) -> None:
    """SGD for 2 steps; then AdamW for 2 steps saving checkpoint-2 (rank 0 writes it). Numpy: outlives the process."""
    join_process_group(rank, world, port)
    results = {}
    for name, options in (("sgd", {}), ("adamw", ADAMW | {"save_strategy": "steps", "save_steps": 2})):
        trainer = _madpo(
            Path(folder) / name, pairs(), max_steps=2, per_device_train_batch_size=BATCH // world, **options
        )
        trainer.train()
        results[name] = [p.numpy() for p in weights(trainer)]
    queue.put((rank, results))


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, Any], Path]:
    """One 2-process run shared by the tests below: its weights per rank and its output folder."""
    folder = tmp_path_factory.mktemp("madpo_ddp")
    return run_ranks(_train_one_rank, str(folder)), folder


def _single(folder: Path, model_seed: int = 0, checkpoint: Path | None = None, **options: Any) -> list[torch.Tensor]:
    trainer = _madpo(folder, pairs(), model_seed=model_seed, per_device_train_batch_size=BATCH, **options)
    trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
    assert trainer.state.global_step == options["max_steps"]
    return weights(trainer)


@pytest.mark.heavy
def test_two_processes_train_like_one_process_with_the_whole_batch(
    two_processes: tuple[dict[int, Any], Path], tmp_path: Path
) -> None:
    """2 processes x 4 pairs for 2 steps equal 1 process x 8 pairs on every rank, with SGD (and AdamW). MADPO's
    weights are per pair (from the pair's own reward margin) and its loss a per-pair mean, so the all-reduced
    mean of the two ranks' gradients is the whole batch's gradient."""
    results, _ = two_processes
    initial = weights(_madpo(tmp_path / "initial", pairs()))
    for name, options, tolerance in (("sgd", {}, {}), ("adamw", ADAMW, ADAMW_TOLERANCE)):
        single = _single(tmp_path / name, max_steps=2, **options)
        assert_all_changed(initial, single)
        for rank in range(2):
            assert_same_weights(single, results[rank][name], **tolerance)


@pytest.mark.heavy
def test_checkpoint_of_two_processes_resumes_on_one_process(
    two_processes: tuple[dict[int, Any], Path], tmp_path: Path
) -> None:
    """AdamW: steps 1-2 on 2 processes x 4 pairs (checkpoint-2 written by rank 0), steps 3-4 on 1 process x 8 pairs,
    equal 4 uninterrupted steps on 1 process. The resumed model starts from other weights, and resuming without
    the optimizer state gives other weights, so the checkpoint's weights and AdamW moments are what makes it match.

    Not carried over: the 2-process run writes ``rng_state_0.pth`` and ``rng_state_1.pth``, the 1-process resume
    looks for ``rng_state.pth`` and goes on without restoring the RNG (transformers logs it). Nothing is lost
    here: without dropout the only randomness is the data order, and accelerate's seedable sampler draws it from
    ``seed + epoch``, the same in both runs.
    """
    _, folder = two_processes
    checkpoint = folder / "adamw" / "checkpoint-2"
    assert_rng_files_per_rank(checkpoint)
    straight = _single(tmp_path / "straight", max_steps=4, **ADAMW)
    resumed = _single(tmp_path / "resumed", model_seed=5, checkpoint=checkpoint, max_steps=4, **ADAMW)
    assert_same_weights(straight, resumed, **ADAMW_TOLERANCE)
    restarted = _single(
        tmp_path / "restarted",
        model_seed=5,
        max_steps=4,
        **ADAMW,
        checkpoint=without_optimizer_state(checkpoint, tmp_path / "no-optimizer"),
    )
    assert max_difference(straight, restarted) > 100 * ADAMW_TOLERANCE["atol"]
