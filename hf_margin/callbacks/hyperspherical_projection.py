"""Projection of the hyperspherical heads' class vectors to unit norm after each optimiser step, for `Trainer`."""

from __future__ import annotations

from typing import Any

from torch import nn
from transformers import TrainerCallback

from hf_margin.heads.hyperspherical import HypersphericalHead


class HypersphericalProjectionCallback(TrainerCallback):
    """After every optimiser step, project the class vectors of each `HypersphericalHead` in the model to unit norm.

    Paper: Pereira et al., "Hyperspherical embedding for novel class classification", arXiv 2102.03243 (Keras
    ``min_max_norm(1, 1)`` kernel constraint: projected gradient descent). It runs at `on_optimizer_step`, which
    `Trainer` calls right after ``optimizer.step()`` (once per accumulated batch, so gradient accumulation projects
    once per update), on the model the trainer holds; every process of a multi-process run projects its own copy of
    the same weights the same way. Not for parameters sharded across processes (DeepSpeed ZeRO-3, FSDP), where a
    process does not hold whole class vectors.

    Example:
        >>> trainer = Trainer(model, args, train_dataset=data, callbacks=[HypersphericalProjectionCallback()])
    """

    def on_optimizer_step(
        self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **kwargs: Any
    ) -> None:
        if model is None:
            return
        for module in model.modules():
            if isinstance(module, HypersphericalHead):
                module.project_()
