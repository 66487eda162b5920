"""Partial FC at 1M classes on 1 and 2 CPU processes (gloo): per-process memory and step time, for the scaling
section of docs/methods/partial_fc.md.

    python -m benchmarks.partial_fc_scale [--classes 1000000] [--batch 64] [--steps 3]

Each process builds `PartialFCHead` (ArcFace, sample_rate 0.1, embedding 512, float32) after joining the process
group, so it holds ``C / R`` centres, and times ``steps`` SGD steps (forward, backward, update) on its own batch of
``batch`` rows after one warm-up step. Memory is the process's peak resident set (``ru_maxrss``) minus its resident
set before the head was built, so the interpreter and torch are left out; the centres' own bytes are printed beside
it. Prints one JSON object per world size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from typing import Any

import torch
import torch.multiprocessing as mp

DIM, SAMPLE_RATE = 512, 0.1


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _measure(rank: int, world: int, port: int, classes: int, batch: int, steps: int, queue: Any) -> None:
    from hf_margin.heads import PartialFCHead

    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    generator = torch.Generator().manual_seed(rank)
    x = torch.randn(batch, DIM, generator=generator, requires_grad=True)
    y = torch.randint(0, classes, (batch,), generator=generator)
    before = _rss_mib()
    head = PartialFCHead("arcface", DIM, classes, sample_rate=SAMPLE_RATE, margin=0.5, scale=64.0)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        head(x, y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
        if world > 1:
            torch.distributed.barrier()
        if step:  # the first step allocates the gradient: a warm-up
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    queue.put(
        {
            "rank": rank,
            "centres_mib": head.weight.numel() * 4 / 2**20,
            "memory_mib": peak - before,
            "step_s": sorted(times)[len(times) // 2],
        }
    )
    if world > 1:
        torch.distributed.destroy_process_group()


def measure(world: int, classes: int, batch: int, steps: int) -> dict[str, Any]:
    """The slowest and largest process of a `world`-process run."""
    from tests.multiprocess import free_port

    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    args = (world, port, classes, batch, steps, queue)
    processes = [context.Process(target=_measure, args=(rank, *args)) for rank in range(world)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join()
    return {
        "world": world,
        "classes": classes,
        "batch_per_process": batch,
        "centres_mib_per_process": max(r["centres_mib"] for r in results),
        "memory_mib_per_process": round(max(r["memory_mib"] for r in results)),
        "step_s": round(max(r["step_s"] for r in results), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2])
    options = parser.parse_args()
    for world in options.worlds:
        print(json.dumps(measure(world, options.classes, options.batch, options.steps)), flush=True)


if __name__ == "__main__":
    main()
