"""Save a loss's own random generator with every Trainer checkpoint and restore it when the training resumes.

A Trainer checkpoint restores the model, the optimizer, the scheduler and the global random states, but not a
loss's private generator (e.g. MarginEmbeddingLoss's mixing draws with ``seed``): without this callback, a resumed
training would draw the mixing weights again from the seed, not where the interrupted one left off.

Limits: the checkpoints are looked for in ``args.output_dir`` (the Trainer's own layout; not a hyperparameter search's
``run-*`` folders, nor a checkpoint copied elsewhere and passed to ``resume_from_checkpoint``: then the draws restart
from the seed, with a warning). Under several processes, every process restores the state saved by the first one,
which equals its own when every process draws the same amounts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

GENERATOR_FILE = "loss_generator.pt"


class HasGenerator(Protocol):
    @property
    def owns_generator(self) -> bool: ...

    def generator_state(self) -> dict[str, Any] | None: ...

    def set_generator_state(self, state: dict[str, Any]) -> None: ...


class LossGeneratorCallback(TrainerCallback):
    """Write ``loss.generator_state()`` into every checkpoint folder (``loss_generator.pt``) and, when the
    training starts from a checkpoint, give the saved state back with ``loss.set_generator_state``.

    The file is written at the end of a step that will be saved (``control.should_save``), before the Trainer writes
    the checkpoint's ``trainer_state.json``, so a checkpoint that counts as complete holds it; saves decided later
    (after an evaluation, at an epoch's end) write it in ``on_save``. Add it with :func:`checkpoint_loss_generator`.
    """

    def __init__(self, loss: HasGenerator) -> None:
        self.loss = loss

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if control.should_save:
            self._write(args, state)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not (_checkpoint_folder(args, state) / GENERATOR_FILE).is_file():
            self._write(args, state)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 0 or not self.loss.owns_generator:
            return
        path = _checkpoint_folder(args, state) / GENERATOR_FILE
        if path.is_file():
            self.loss.set_generator_state(torch.load(path, weights_only=True))
        else:  # written without this callback, or a checkpoint resumed from outside output_dir
            logger.warning("no %s in %s: the loss's generator restarts from its seed", GENERATOR_FILE, path.parent)

    def _write(self, args: Any, state: Any) -> None:
        generator = self.loss.generator_state()
        if generator is None or not args.should_save:  # the processes that write checkpoints write it
            return
        folder = _checkpoint_folder(args, state)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"{GENERATOR_FILE}.partial"
        torch.save(generator, partial)
        os.replace(partial, folder / GENERATOR_FILE)  # a killed write never leaves a truncated file


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
    names = ("generator_state", "set_generator_state")
    if not all(callable(getattr(loss, name, None)) for name in names) or not hasattr(loss, "owns_generator"):
        raise TypeError(
            f"`loss` must have owns_generator, generator_state() and set_generator_state(), got {type(loss).__name__}"
        )
    callback = LossGeneratorCallback(loss)
    trainer.add_callback(callback)
    return callback
