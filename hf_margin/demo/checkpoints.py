"""Resuming a Trainer run that a stopped process cut off: its newest complete checkpoint."""

from __future__ import annotations

from pathlib import Path


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` in `folder` (None if there is none): one holding ``trainer_state.json``,
    which transformers writes last, so that a checkpoint cut off by a killed process is skipped."""
    steps = [
        (int(path.name.removeprefix("checkpoint-")), path)
        for path in (folder.glob("checkpoint-*") if folder.is_dir() else [])
        if path.name.removeprefix("checkpoint-").isdigit() and (path / "trainer_state.json").is_file()
    ]
    return max(steps)[1] if steps else None
