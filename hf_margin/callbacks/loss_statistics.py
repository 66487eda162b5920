"""Log a loss's own statistics (e.g. MarginEmbeddingLoss's filtered share) with the trainer's training logs."""

from __future__ import annotations

from typing import Any, Protocol

from transformers import TrainerCallback


class ReportsStatistics(Protocol):
    def pop_statistics(self) -> dict[str, float]: ...


class LossStatisticsCallback(TrainerCallback):
    """Add ``loss.pop_statistics()`` (means since the last log) to every training log entry.

    Add it with :func:`log_loss_statistics`, which puts it before the reporting callbacks (TensorBoard, W&B,
    the printer) so that they receive the statistics too; the values also land in ``trainer.state.log_history``.
    """

    def __init__(self, loss: ReportsStatistics) -> None:
        self.loss = loss

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs is None or "loss" not in logs:
            return
        statistics = self.loss.pop_statistics()
        logs.update(statistics)
        if state.log_history:
            state.log_history[-1].update(statistics)


def log_loss_statistics(trainer: Any, loss: ReportsStatistics | None = None) -> LossStatisticsCallback:
    """Log `loss`'s statistics (default: ``trainer.loss``) with every training log of `trainer`.

    Example:
        >>> trainer = SentenceTransformerTrainer(model=model, train_dataset=data, loss=MarginEmbeddingLoss(model))
        >>> log_loss_statistics(trainer)   # logs filtered_share, mean_focal_weight, similarity_gap
    """
    loss = trainer.loss if loss is None else loss
    if not callable(getattr(loss, "pop_statistics", None)):
        raise TypeError(f"`loss` must have a pop_statistics() method, got {type(loss).__name__}")
    callback = LossStatisticsCallback(loss)
    trainer.callback_handler.callbacks.insert(0, callback)
    return callback
