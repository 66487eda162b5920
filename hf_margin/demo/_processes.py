"""Recipes launched on several processes (``accelerate launch``, ``torchrun``) that train with their own loop.

Such a recipe runs many independent trainings (heads x folds x seeds). Launched on N processes, it deals its runs
round-robin to the processes and gathers every result on every process (`run_split`), so the work is done once and
N times faster; the main process alone writes the files and prints the table (`is_main_process`). One process
(no launcher) runs everything as before. The process group is the launcher's (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``): a Trainer's, if one made it, or a gloo group made here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch.distributed as dist

Run = TypeVar("Run")
Result = TypeVar("Result")


def process_rank_and_count() -> tuple[int, int]:
    """This process's rank and the number of launched processes (0 and 1 without a launcher)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return process_rank_and_count()[0] == 0


def run_split(runs: Sequence[Run], work: Callable[[Run], Result]) -> list[Result]:
    """``[work(run) for run in runs]``, each run done by one process (run i by process ``i % count``); every
    process returns all results in the order of `runs`. Each run must be independent of the others (its own
    seed), so the results equal one process's."""
    rank, count = process_rank_and_count()
    if count == 1:
        return [work(run) for run in runs]
    mine = {index: work(run) for index, run in enumerate(runs) if index % count == rank}
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    parts: list[Any] = [None] * count
    dist.all_gather_object(parts, mine)
    results = {index: result for part in parts for index, result in part.items()}
    return [results[index] for index in range(len(runs))]
