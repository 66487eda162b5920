"""Run small-model demo work on one torch thread: tiny per-op work gains nothing from more, and on a shared,
loaded machine the extra threads' synchronisation makes each step many times slower."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_thread() -> Iterator[None]:
    """Set torch to one intra-op thread inside the block and restore the previous count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
