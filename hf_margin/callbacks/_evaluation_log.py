"""Base of the callbacks that add their own measurements to every evaluation log of a `Trainer`."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class EvaluationMeasureCallback(TrainerCallback):
    """Calls ``measure(model)`` on each evaluation log (the one holding ``<prefix>_runtime``) and adds the returned
    values to the log and to ``state.log_history``; subclasses set ``self.prefix`` and implement `measure`."""

    prefix: str

    def measure(self, model: Any) -> dict[str, float]:
        raise NotImplementedError

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs is None or f"{self.prefix}_runtime" not in logs or kwargs.get("model") is None:
            return
        metrics = self.measure(kwargs["model"])
        logs.update(metrics)
        if state.log_history:
            state.log_history[-1].update(metrics)
