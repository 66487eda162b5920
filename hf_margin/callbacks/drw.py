"""DRW (deferred re-weighting, Cao et al., arXiv 1906.07413) as a Trainer callback."""

from __future__ import annotations

import math
from typing import Any, Protocol

from transformers import TrainerCallback

from hf_margin._validation import check_in_range


class DeferredWeights(Protocol):
    def set_deferred_weights(self, beta: float | None) -> None: ...


class DRWCallback(TrainerCallback):
    """Uniform class weights until `switch_epoch`, then effective-number weights ``(1-beta)/(1-beta^n_j)``.

    Works with any loss that has ``set_deferred_weights`` (`LDAMLoss`, `MultiLabelLDAMLoss`, a TransICD model's
    ``loss_fct``). The weights follow the epoch in progress (the floor of ``state.epoch``) at every epoch start, so a
    run resumed mid-epoch gets them right.

    Args:
        loss: the loss module whose class weights switch.
        switch_epoch: the first epoch (0-based) trained with the re-weighting (160 of 200 in the paper).
        beta: the effective-number beta (0.9999 in the paper).

    Example:
        >>> trainer.add_callback(DRWCallback(model.loss_fct, switch_epoch=8))
    """

    def __init__(self, loss: DeferredWeights, switch_epoch: int, beta: float = 0.9999) -> None:
        if not callable(getattr(loss, "set_deferred_weights", None)):
            raise TypeError(f"`loss` must have set_deferred_weights(beta), got {type(loss).__name__}")
        check_in_range(switch_epoch, "switch_epoch", 0, float("inf"))
        check_in_range(beta, "beta", 0.0, 1.0 - 1e-12)
        self.loss, self.switch_epoch, self.beta = loss, switch_epoch, beta
        self.active = False

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The epoch in progress is the floor: Trainer leaves state.epoch at exactly k when epoch k starts, and at
        # the checkpoint's fraction (7.6 is inside epoch 7) when a resumed run starts the epoch it stopped in.
        self.active = math.floor(state.epoch or 0.0) >= self.switch_epoch
        self.loss.set_deferred_weights(self.beta if self.active else None)
