"""Trainer callbacks that stand for a killed process and observe where a resumed training restarts."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class StopAt(TrainerCallback):
    """Stands for a killed process: raises at the end of step `step` (after the checkpoint of the step before)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            raise KeyboardInterrupt


class FirstStep(TrainerCallback):
    """Records the first step trained (the step a resumed training starts from, plus one)."""

    def __init__(self) -> None:
        self.first: int | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.first = state.global_step if self.first is None else self.first


class StopTrainingAt(TrainerCallback):
    """Ends the training at step `step` the way a callback does (``control.should_training_stop``), as experiment
    5's check does when the teacher gets ahead; the checkpoint of that step records the stop."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            control.should_training_stop = True
