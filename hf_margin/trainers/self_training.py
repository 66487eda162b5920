"""`SelfTrainingLoop`: self-training with margin thresholds around any transformers `Trainer`.

Self-Training: A Survey (Amini, Feofanov, Pauletto, Hadjadj, Devijver, Maximov; arXiv 2202.12040). With the
prediction margin ``m(x) = h(x, y_hat) - max_{k != y_hat} h(x, k)``:

1. train h on the labelled set S;
2. ``Pi = {(x, y_hat(x)) : x in X_U, m(x) >= theta}``; ``S <- S u Pi``, ``X_U <- X_U \\ Pi``; retrain h;
3. repeat until X_U or Pi is empty, or for at most `rounds` rounds.

Threshold choices (`SelfTrainingConfig`): a fixed theta; a curriculum as a schedule of thetas (one per round);
or a curriculum as a share of the remaining unlabelled points accepted per round (the most confident ones, after
Cascante-Bonilla et al. 2021; the survey's percentile step was not pinned down, so the schedule is the user's).
The survey's automatic choice of theta (Feofanov et al. 2019's transductive bound) is left out: its bound formula
was not found, and no formula is attributed to the paper here. Accepted pseudo-labels stay fixed (step 2 removes
them from X_U); they are not relabelled in later rounds.

Fresh model or continued training: with `model_init` every round trains a fresh model from the Trainer's seed
(the curriculum-labelling choice, which limits confirmation bias); with `model` the same model keeps training
round after round. Exactly one is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_margin._outputs import output_logits
from hf_margin._validation import check_choice, check_in_range, check_positive_int
from hf_margin.trainers._pseudo_labels import SCORES, check_threshold, prediction_margins, share_threshold

HISTORY_NAME = "self_training_history.json"


@dataclass
class SelfTrainingConfig:
    r"""How `SelfTrainingLoop` picks pseudo-labels.

    Parameters:
        rounds (`int`, *optional*, defaults to `3`):
            Most pseudo-label-and-retrain rounds after the labelled-only round 0.
        threshold (`float` or `tuple[float, ...]`, *optional*, defaults to `0.8`):
            Margin threshold theta (accept ``m >= theta``): one value for every round, or one per round (a
            threshold curriculum, length `rounds`). In [0, 1] for `score="probabilities"`, finite >= 0 for logits.
        accept_share (`float` or `tuple[float, ...]`, *optional*, defaults to `None`):
            Share curriculum instead of `threshold`: each round accepts this share (in (0, 1]) of the remaining
            unlabelled points with the largest margins; one value or one per round. None uses `threshold`.
        score (`str`, *optional*, defaults to `"probabilities"`):
            Margin on softmax probabilities (top-1 minus top-2 probability) or on raw `"logits"`.
        label_column (`str`, *optional*, defaults to `"labels"`):
            Label column of the labelled set; pseudo-labels are written to it.
        hidden_label_column (`str`, *optional*, defaults to `"hidden_label"`):
            Column of the unlabelled set with true labels, used only to log how accurate the pseudo-labels are and
            dropped before training and prediction (absent: accuracy is logged as None).
    """

    rounds: int = field(default=3, metadata={"help": "most pseudo-label-and-retrain rounds"})
    threshold: float | tuple[float, ...] = field(default=0.8, metadata={"help": "margin threshold(s)"})
    accept_share: float | tuple[float, ...] | None = field(default=None, metadata={"help": "share(s) accepted"})
    score: str = field(default="probabilities", metadata={"help": "'probabilities' or 'logits'"})
    label_column: str = field(default="labels", metadata={"help": "label column"})
    hidden_label_column: str = field(default="hidden_label", metadata={"help": "true labels of unlabelled rows"})

    def __post_init__(self) -> None:
        check_positive_int(self.rounds, "rounds")
        check_choice(self.score, "score", SCORES)
        for name in ("threshold", "accept_share"):
            values = getattr(self, name)
            if isinstance(values, (list, tuple)):
                if len(values) != self.rounds:
                    raise ValueError(f"`{name}` must hold one value per round ({self.rounds}), got {len(values)}")
                setattr(self, name, tuple(values))
        for value in self._values("threshold"):
            check_threshold(value, "threshold", self.score)
        for value in self._values("accept_share"):
            check_threshold(value, "accept_share", "probabilities")
            check_in_range(value, "accept_share", 1e-12, 1.0)

    def _values(self, name: str) -> tuple[float, ...]:
        values = getattr(self, name)
        return () if values is None else values if isinstance(values, tuple) else (values,)

    def for_round(self, name: str, round_index: int) -> float:
        """The threshold or share of round `round_index` (1-based)."""
        values = self._values(name)
        return values[round_index - 1] if len(values) > 1 else values[0]


@dataclass(frozen=True)
class RoundRecord:
    """What one round did. Round 0 is the labelled-only model; its selection fields are zero.

    Attributes:
        round: 0 for labelled-only training, then 1, 2, ...
        train_rows: rows the round's model trained on (labelled + pseudo-labelled).
        threshold: the margin threshold used to pick this round's pseudo-labels (None for round 0).
        accepted: pseudo-labels added before this round's training.
        accepted_accuracy: share of those that equal the hidden labels (None without hidden labels or if none).
        pseudo_labelled: pseudo-labels in the training set so far.
        pseudo_label_accuracy: share of all of those that equal the hidden labels (None as above).
        unlabelled_left: unlabelled rows not yet pseudo-labelled.
        metrics: what the loop's `evaluate` callable returned for this round's model.
        checkpoint: folder of this round's saved model.
    """

    round: int
    train_rows: int
    threshold: float | None
    accepted: int
    accepted_accuracy: float | None
    pseudo_labelled: int
    pseudo_label_accuracy: float | None
    unlabelled_left: int
    metrics: dict[str, float]
    checkpoint: str


@dataclass
class SelfTrainingResult:
    """The last round's model and one record per round."""

    model: nn.Module
    history: list[RoundRecord]


def _trained(trainer: Trainer) -> nn.Module:
    model = trainer.model
    if model is None:
        raise RuntimeError("the Trainer holds no model after training")
    return model


def _accuracy(hits: int, rows: int, known: bool) -> float | None:
    return hits / rows if known and rows else None


class SelfTrainingLoop:
    """Self-training with margin thresholds (arXiv 2202.12040) around a transformers `Trainer`.

    Round 0 trains on `labelled`; each later round predicts the remaining `unlabelled` rows, adds those whose
    margin passes the round's threshold with their predicted class as label, and trains again. The loop stops
    after `config.rounds` rounds or when a round accepts nothing or nothing is left. Every round saves its model to
    ``args.output_dir/round-<r>`` and the history so far to ``args.output_dir/self_training_history.json``.

    Args:
        args: the `TrainingArguments` of every round's training (same seed each round).
        labelled: a `datasets.Dataset` with the model's input columns and ``config.label_column``.
        unlabelled: a `datasets.Dataset` with the same columns but the label column, optionally plus
            ``config.hidden_label_column``.
        config: the pseudo-labelling choices; defaults to `SelfTrainingConfig()`.
        model: a model to keep training round after round (anything whose output has ``logits``).
        model_init: a callable returning a fresh model, called by the Trainer (after seeding) each round.
        trainer_cls: the `Trainer` class to use (e.g. `ClassificationLossTrainer`).
        evaluate: optional ``evaluate(model) -> dict[str, float]``, run after each round and logged.
        **trainer_kwargs: passed to every `trainer_cls(...)` (data_collator, loss, callbacks, ...).

    Example:
        >>> loop = SelfTrainingLoop(args, labelled, unlabelled, SelfTrainingConfig(threshold=0.9), model_init=init)
        >>> result = loop.run()
        >>> [(r.accepted, r.pseudo_label_accuracy) for r in result.history]
    """

    def __init__(
        self,
        args: TrainingArguments,
        labelled: Any,
        unlabelled: Any,
        config: SelfTrainingConfig | None = None,
        model: nn.Module | None = None,
        model_init: Callable[[], nn.Module] | None = None,
        trainer_cls: type[Trainer] = Trainer,
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        import datasets

        if (model is None) == (model_init is None):
            raise ValueError("give exactly one of `model` (continue training) and `model_init` (fresh each round)")
        self.config = config if config is not None else SelfTrainingConfig()
        for name, data in (("labelled", labelled), ("unlabelled", unlabelled)):
            if not isinstance(data, datasets.Dataset):
                raise TypeError(f"`{name}` must be a datasets.Dataset, got {type(data).__name__}")
        label, hidden = self.config.label_column, self.config.hidden_label_column
        if label not in labelled.column_names:
            raise ValueError(f"`labelled` must have the label column {label!r}; got columns {labelled.column_names}")
        if label in unlabelled.column_names:
            raise ValueError(f"`unlabelled` must not have the label column {label!r} (put true labels in {hidden!r})")
        if len(labelled) == 0:
            raise ValueError("`labelled` must hold at least one row, got 0")
        inputs = sorted(set(labelled.column_names) - {label})
        if sorted(set(unlabelled.column_names) - {hidden}) != inputs:
            raise ValueError(
                f"`unlabelled` must have the columns of `labelled` but {label!r} (plus optional "
                f"{hidden!r}): expected {inputs}, got {unlabelled.column_names}"
            )
        self.args, self.labelled, self.unlabelled = args, labelled, unlabelled
        self.output_dir = Path(str(args.output_dir))
        self.model, self.model_init, self.trainer_cls = model, model_init, trainer_cls
        self.evaluate, self.trainer_kwargs = evaluate, trainer_kwargs

    def _train(self, train_rows: Any) -> Trainer:
        model_init: Any = self.model_init
        trainer = self.trainer_cls(
            model=self.model, model_init=model_init, args=self.args, train_dataset=train_rows, **self.trainer_kwargs
        )
        trainer.train()
        self.model = None if self.model_init is not None else _trained(trainer)
        return trainer

    def predict(self, trainer: Trainer, rows: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted classes and margins of `rows` (without hidden labels) under the trainer's model."""
        model = _trained(trainer).eval()
        logits = []
        with torch.no_grad():
            for batch in trainer.get_test_dataloader(rows):
                logits.append(output_logits(model(**batch)).cpu())
        return prediction_margins(torch.cat(logits), self.config.score)

    def _record(self, index: int, trainer: Trainer, **fields: Any) -> RoundRecord:
        folder = self.output_dir / f"round-{index}"
        trainer.save_model(str(folder))
        metrics = self.evaluate(_trained(trainer)) if self.evaluate is not None else {}
        return RoundRecord(round=index, metrics=metrics, checkpoint=str(folder), **fields)

    def _save_history(self, history: list[RoundRecord]) -> None:
        path = self.output_dir / HISTORY_NAME
        path.write_text(json.dumps([asdict(r) for r in history], indent=2))

    def run(self) -> SelfTrainingResult:
        """Run round 0 and the self-training rounds; return the last model and the history."""
        import datasets

        config, hidden = self.config, self.config.hidden_label_column
        known = hidden in self.unlabelled.column_names
        truth = torch.as_tensor(self.unlabelled[hidden]) if known else None
        inputs = self.unlabelled.remove_columns([hidden]) if known else self.unlabelled
        remaining = torch.arange(len(inputs))
        train_rows = self.labelled
        trainer = self._train(train_rows)
        pseudo, hits = 0, 0
        history = [
            self._record(
                0,
                trainer,
                train_rows=len(train_rows),
                threshold=None,
                accepted=0,
                accepted_accuracy=None,
                pseudo_labelled=0,
                pseudo_label_accuracy=None,
                unlabelled_left=len(remaining),
            )
        ]
        self._save_history(history)
        for index in range(1, config.rounds + 1):
            if len(remaining) == 0:
                break
            predictions, margins = self.predict(trainer, inputs.select(remaining.tolist()))
            if config.accept_share is not None:
                threshold = share_threshold(margins, config.for_round("accept_share", index))
            else:
                threshold = config.for_round("threshold", index)
            chosen = margins >= threshold
            if not bool(chosen.any()):
                break
            rows, labels = remaining[chosen], predictions[chosen]
            new_hits = int((labels == truth[rows]).sum()) if truth is not None else 0
            pseudo, hits = pseudo + len(rows), hits + new_hits
            added = inputs.select(rows.tolist()).add_column(config.label_column, labels.tolist())
            train_rows = datasets.concatenate_datasets([train_rows, added.cast(self.labelled.features)])
            remaining = remaining[~chosen]
            trainer = self._train(train_rows)
            history.append(
                self._record(
                    index,
                    trainer,
                    train_rows=len(train_rows),
                    threshold=threshold,
                    accepted=len(rows),
                    accepted_accuracy=_accuracy(new_hits, len(rows), known),
                    pseudo_labelled=pseudo,
                    pseudo_label_accuracy=_accuracy(hits, pseudo, known),
                    unlabelled_left=len(remaining),
                )
            )
            self._save_history(history)
        return SelfTrainingResult(model=_trained(trainer), history=history)
