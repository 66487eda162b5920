"""Save a loss's own random generator with every Trainer checkpoint and restore it when the training resumes.

A Trainer checkpoint restores the model, the optimizer, the scheduler and the global random states, but not a
loss's private generator (e.g. MarginEmbeddingLoss's mixing draws with ``seed``): without this callback, a resumed
training would draw the mixing weights again from the seed, not where the interrupted one left off.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

GENERATOR_FILE = "loss_generator.pt"


class HasGenerator(Protocol):
    def generator_state(self) -> Tensor | None: ...

    def set_generator_state(self, state: Tensor) -> None: ...


class LossGeneratorCallback(TrainerCallback):
    """Write ``loss.generator_state()`` into every checkpoint folder (``loss_generator.pt``) and, when the
    training starts from a checkpoint, give the saved state back with ``loss.set_generator_state``.

    Add it with :func:`checkpoint_loss_generator`.
    """

    def __init__(self, loss: HasGenerator) -> None:
        self.loss = loss

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        generator = self.loss.generator_state()
        if generator is not None and state.is_world_process_zero:  # every process draws the same
            torch.save(generator, _checkpoint_folder(args, state) / GENERATOR_FILE)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 0:
            return
        path = _checkpoint_folder(args, state) / GENERATOR_FILE
        if path.is_file():
            self.loss.set_generator_state(torch.load(path, weights_only=True))
        else:  # a checkpoint from before the generator's first draw, or written without this callback
            logger.warning("no %s in %s: the loss's generator restarts from its seed", GENERATOR_FILE, path.parent)


def _checkpoint_folder(args: Any, state: Any) -> Path:
    return Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"


def checkpoint_loss_generator(trainer: Any, loss: HasGenerator | None = None) -> LossGeneratorCallback:
    """Save `loss`'s generator (default: ``trainer.loss``) with `trainer`'s checkpoints and restore it on resume.

    Example:
        >>> loss = MarginEmbeddingLoss(model, mixing="pairwise", seed=0)
        >>> trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
        >>> checkpoint_loss_generator(trainer)
        >>> trainer.train(resume_from_checkpoint=True)   # the mixing draws continue where they stopped
    """
    loss = trainer.loss if loss is None else loss
    if not all(callable(getattr(loss, name, None)) for name in ("generator_state", "set_generator_state")):
        raise TypeError(
            f"`loss` must have generator_state() and set_generator_state() methods, got {type(loss).__name__}"
        )
    callback = LossGeneratorCallback(loss)
    trainer.add_callback(callback)
    return callback
