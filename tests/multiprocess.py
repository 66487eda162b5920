"""Run a function on several spawned processes that form a gloo process group, and collect their results."""

from __future__ import annotations

import io
import os
import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ResultQueue:
    """A queue that carries its items by value (``torch.save`` bytes). torch's own pickling of a tensor sends a file
    descriptor that the receiver fetches from the sending process later: a rank that has already exited by then
    makes the parent fail with ``ConnectionResetError`` (seen on a loaded machine)."""

    def __init__(self, context: Any) -> None:
        self._queue = context.Queue()

    def put(self, item: Any) -> None:
        buffer = io.BytesIO()
        torch.save(item, buffer)
        self._queue.put(buffer.getvalue())

    def get(self, timeout: float) -> Any:
        return torch.load(io.BytesIO(self._queue.get(timeout=timeout)), weights_only=False)


def _rank_main(target: Callable[..., None], *args: Any) -> None:
    """Run one rank's `target`, then destroy the process group it (or a Trainer) created. A group left alive at
    exit tears down gloo's threads while they are joinable: ``terminate called without an active exception`` and
    a non-zero exit code, after the results were sent (seen in CI on a 2-process Trainer run)."""
    try:
        target(*args)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def run_ranks(target: Callable[..., None], *args: Any, world: int = 2, timeout: float = 300) -> dict[int, Any]:
    """Start ``target(rank, world, port, *args, queue)`` on `world` processes; each puts ``(rank, result)`` on the
    queue (a `ResultQueue`). Returns {rank: result} after checking that every process exited cleanly. The process
    group a rank leaves behind is destroyed when `target` returns."""
    context = mp.get_context("spawn")
    queue = ResultQueue(context)
    port = free_port()
    processes = [
        context.Process(target=_rank_main, args=(target, rank, world, port, *args, queue)) for rank in range(world)
    ]
    for process in processes:
        process.start()
    results = dict(queue.get(timeout=timeout) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0, f"a rank exited with code {process.exitcode}"
    return results


# AdamW for the resume tests (optimizer state matters). It divides by sqrt(v) + 1e-8, so gradient entries near
# 1e-8 turn float32 rounding (another summation order on 2 processes) into update differences of up to ~1e-3 lr
# (SGD: ~1e-8). A lost optimizer state or data position moves the weights by ~lr, 1000 times more.
ADAMW = {"optim": "adamw_torch", "learning_rate": 1e-2}
ADAMW_TOLERANCE = {"atol": 5e-5, "rtol": 1e-3}


def join_process_group(rank: int, world: int, port: int) -> None:
    """In a spawned process, before any TrainingArguments is built: the env of a `torchrun` rank, one thread."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)


def assert_same_weights(
    expected: Sequence[torch.Tensor], got: Sequence[np.ndarray | torch.Tensor], atol: float = 1e-6, rtol: float = 1e-5
) -> None:
    """Every tensor equal within the tolerance of a DDP run against one process (float32 sums in another order)."""
    assert len(expected) == len(got) > 0
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(a, torch.as_tensor(b), atol=atol, rtol=rtol)


def max_difference(expected: Sequence[np.ndarray | torch.Tensor], got: Sequence[np.ndarray | torch.Tensor]) -> float:
    """The largest absolute difference over all tensors."""
    pairs = zip(expected, got, strict=True)
    return max(float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max()) for a, b in pairs)


def without_optimizer_state(checkpoint: Path, into: Path) -> Path:
    """A copy of a Trainer checkpoint without ``optimizer.pt``: resuming from it restarts the optimizer."""
    shutil.copytree(checkpoint, into)
    (into / "optimizer.pt").unlink()
    return into


def assert_all_changed(before: Sequence[torch.Tensor], after: Sequence[np.ndarray | torch.Tensor]) -> None:
    """Every tensor moved: training happened, so an equality that follows could have failed."""
    assert len(before) == len(after) > 0
    unchanged = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if torch.equal(a, torch.as_tensor(b))]
    assert not unchanged, f"tensors {unchanged} did not change"


def assert_rng_files_per_rank(checkpoint: Path, world: int = 2) -> None:
    """The checkpoint was written by a `world`-process run: the Trainer saved one RNG file per rank, and none
    under the 1-process name ``rng_state.pth`` (so a 1-process resume does not restore the RNG)."""
    assert {p.name for p in checkpoint.glob("rng_state*.pth")} == {f"rng_state_{r}.pth" for r in range(world)}
