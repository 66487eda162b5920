"""Run a function on several spawned processes that form a gloo process group, and collect their results."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(target: Callable[..., None], *args: Any, world: int = 2, timeout: float = 300) -> dict[int, Any]:
    """Start ``target(rank, world, port, *args, queue)`` on `world` processes; each puts ``(rank, result)`` on the
    queue. Returns {rank: result} after checking that every process exited cleanly."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    processes = [context.Process(target=target, args=(rank, world, port, *args, queue)) for rank in range(world)]
    for process in processes:
        process.start()
    results = dict(queue.get(timeout=timeout) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return results
