"""`run_split`: a recipe's independent runs dealt to the launched processes, every result gathered everywhere."""

from __future__ import annotations

import os
from typing import Any

import pytest

from hf_margin.demo._processes import is_main_process, process_rank_and_count, run_split
from tests.multiprocess import join_process_group, run_ranks


def _square_with_rank(rank: int, world: int, port: int, queue: Any) -> None:
    join_process_group(rank, world, port)
    results = run_split(list(range(5)), lambda run: (run * run, int(os.environ["RANK"])))
    queue.put((rank, (results, is_main_process())))


def test_runs_are_dealt_round_robin_and_every_process_gets_all_results_in_order() -> None:
    results = run_ranks(_square_with_rank, world=2)
    expected = [(0, 0), (1, 1), (4, 0), (9, 1), (16, 0)]  # run i done by process i % 2
    assert results == {0: (expected, True), 1: (expected, False)}


def test_without_a_launcher_one_process_does_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert process_rank_and_count() == (0, 1) and is_main_process()
    assert run_split(["a", "b"], str.upper) == ["A", "B"]
