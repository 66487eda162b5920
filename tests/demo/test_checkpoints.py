"""Finding the checkpoint an interrupted Trainer run resumes from."""

from __future__ import annotations

from pathlib import Path

from hf_margin.demo.checkpoints import last_checkpoint


def test_the_last_checkpoint_is_the_newest_complete_one(tmp_path: Path) -> None:
    assert last_checkpoint(tmp_path / "missing") is None
    for step, complete in ((100, True), (900, True), (1000, True), (1100, False)):  # 1100: cut off before its state
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-best").mkdir()
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-1000", "by step number (not name), complete"
