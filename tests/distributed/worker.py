"""The script the launched tests start with `accelerate launch`: trains the named cases one after another in the
same processes (one launch, one start-up) and writes, per case and rank, the trained parameters as full tensors
(``<out>/<mode>/<case>/weights_rank<r>.safetensors``) and the final model (``<out>/<mode>/<case>/final``).

    accelerate launch --config_file recipes/accelerate/cpu_ddp.yaml \
        tests/distributed/worker.py OUT ddp:madpo fsdp2:petal

Mode ``ddp``: ``Trainer.train()`` (accelerate wraps the model in DistributedDataParallel), then
``trainer.save_model``. Mode ``fsdp2``: `torch.distributed.fsdp.fully_shard` applied directly (accelerate's FSDP
plugin is GPU-only: on CPU processes accelerate 1.16 sets ``MULTI_CPU`` and ignores ``distributed_type: FSDP``,
training plain DDP instead), the trainer's own data loader and ``compute_loss`` (and, for a loss with a state of
its own, its ``create_optimizer``) driven by an SGD loop equal to the Trainer's (constant rate, no clipping, no
weight decay), and a full state dict gathered on every rank, loaded into
a fresh unsharded copy and saved with ``trainer.save_model``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# run as a script: the repository root (for `tests.*`) is two folders up
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
from safetensors.torch import save_file
from torch.distributed.tensor import DTensor

from hf_margin.trainers import ClassificationLossTrainer
from tests.distributed.cases import CASES, EXTRA_CASES, STEPS, full_parameters, loss_state, trained_weights
from tests.distributed.sharding import full_state_dict, shard_like_transformers


def train_fsdp2(case: str, folder: Path, world: int) -> dict[str, torch.Tensor]:
    """STEPS SGD steps of `case` on its FSDP2-sharded model; its full parameters; the final model saved."""
    trainer = (CASES | EXTRA_CASES)[case](folder, world)
    model = trainer.model
    shard_like_transformers(model)
    if isinstance(trainer, ClassificationLossTrainer):  # its own optimizer: the loss's parameters and hooks too
        optimizer = trainer.create_optimizer()
    else:
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=trainer.args.learning_rate)
    model.train()
    batches = iter(trainer.get_train_dataloader())
    for _ in range(STEPS):
        loss = trainer.compute_loss(model, trainer._prepare_inputs(next(batches)))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    weights = full_parameters(model) | loss_state(trainer)
    assert all(isinstance(p, DTensor) for p in model.parameters()), "fully_shard left a parameter unsharded"
    state = full_state_dict(model)
    fresh = (CASES | EXTRA_CASES)[case](folder / "unsharded", world)
    fresh.model.load_state_dict(state)
    fresh.save_model(str(folder / "final"))
    return weights


def main(out: Path, runs: list[str]) -> None:
    """Each run is ``<mode>:<case>``, written to ``<out>/<mode>/<case>``."""
    torch.set_num_threads(1)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    for run in runs:
        mode, case = run.split(":")
        folder = out / mode / case
        if mode == "fsdp2":
            weights = train_fsdp2(case, folder, world)
        else:
            weights, trainer = trained_weights(case, folder, world)
            trainer.save_model(str(folder / "final"))
        save_file(weights, str(folder / f"weights_rank{rank}.safetensors"))
        torch.distributed.barrier()
    torch.distributed.destroy_process_group()  # one left alive at exit can abort the process (tests/multiprocess.py)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
