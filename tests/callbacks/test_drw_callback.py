"""DRWCallback: re-weighting from `switch_epoch` on, decided by the epoch in progress (also on a resumed run)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Trainer, TrainerControl, TrainerState, TrainingArguments

from hf_margin.callbacks import DRWCallback
from hf_margin.losses import LDAMLoss
from tests.callbacks.test_callbacks_in_a_plain_trainer import Classifier, rows


class RecordingLDAM(LDAMLoss):
    """LDAMLoss remembering every beta it is given by the callback."""

    def __init__(self, counts: list[int]) -> None:
        super().__init__(counts, max_m=0.5, scale=5.0)
        self.calls: list[float | None] = []

    def set_deferred_weights(self, beta: float | None) -> None:
        self.calls.append(beta)
        super().set_deferred_weights(beta)


def test_the_epoch_in_progress_decides() -> None:
    loss = RecordingLDAM([5, 3, 1])
    callback = DRWCallback(loss, switch_epoch=8, beta=0.99)
    args = TrainingArguments("unused", report_to="none", use_cpu=True)
    for epoch in (None, 0.0, 7.0, 7.6, 7.999, 8.0, 8.5, 9.0):
        callback.on_epoch_begin(args, TrainerState(epoch=epoch), TrainerControl())
    assert loss.calls == [None, None, None, None, None, 0.99, 0.99, 0.99]


def test_resumed_mid_epoch_before_the_switch_stays_unweighted(tmp_path: Path) -> None:
    train = rows(48, 0)
    counts = torch.bincount(torch.tensor(train["labels"])).tolist()

    def trainer(loss: RecordingLDAM) -> Trainer:
        args = TrainingArguments(
            str(tmp_path),
            num_train_epochs=3,
            per_device_train_batch_size=8,  # 6 steps per epoch
            save_strategy="steps",
            save_steps=10,  # checkpoint-10 is at epoch 1.67, inside the epoch before the switch
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
        )
        return Trainer(
            model=Classifier(),
            args=args,
            train_dataset=train,
            compute_loss_func=lambda outputs, labels, num_items_in_batch=None: loss(outputs["logits"], labels),
            callbacks=[DRWCallback(loss, switch_epoch=2, beta=0.999)],
        )

    first = RecordingLDAM(counts)
    trainer(first).train()
    assert first.calls == [None, None, 0.999]
    resumed = RecordingLDAM(counts)
    trainer(resumed).train(resume_from_checkpoint=str(tmp_path / "checkpoint-10"))
    assert resumed.calls == [None, 0.999]  # epoch 1 finishes unweighted, epoch 2 is re-weighted
