"""Keep PETAL's quality column through `Trainer`'s column filter.

`Trainer` drops dataset columns that the (base) model's `forward` does not name, so a ``petal_quality``
column would vanish before reaching the model. `PetalColumnsMixin` adds the quality keys of the model's
PETAL adapters to the kept columns; mix it into any `Trainer` subclass, or use `PetalTrainer`, which also writes
the filled `petal_adapter` model card on every save (`hf_margin.trainers._model_card`).
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn
from transformers import Trainer

from hf_margin.trainers._columns import ColumnCheck, check_dataset_columns
from hf_margin.trainers._model_card import ModelCardMixin, training_hyperparameters


def quality_keys(model: nn.Module) -> list[str]:
    """The quality keywords of the PETAL adapters of a (peft-wrapped) model."""
    configs: dict[str, Any] = getattr(model, "peft_config", {}) or {}
    return sorted({c.quality_key for c in configs.values() if getattr(c, "peft_type", None) == "PETAL"})


def quality_checks(model: nn.Module, data_collator: Any) -> list[ColumnCheck]:
    """What the dataset's quality column(s) must hold: one finite number per row, in [0, 1] if an adapter does not
    clip it. A missing column is an error only when no adapter has a `default_quality` and the collator is one of
    transformers' defaults (a custom collator may make the quality from other columns)."""
    from transformers import DataCollatorWithPadding, default_data_collator

    configs: dict[str, Any] = getattr(model, "peft_config", {}) or {}
    petal = [c for c in configs.values() if getattr(c, "peft_type", None) == "PETAL"]
    default_collator = data_collator is default_data_collator or isinstance(data_collator, DataCollatorWithPadding)
    checks = []
    for key in quality_keys(model):
        adapters = [c for c in petal if c.quality_key == key]
        unclipped = any(c.clip_quality is False for c in adapters)
        checks.append(
            ColumnCheck(
                key,
                "number",
                bounds=(0.0, 1.0, "clip_quality=False") if unclipped else None,
                required=default_collator and all(c.default_quality is None for c in adapters),
                hint="Add the quality of each sample, or set `default_quality` in the PetalConfig.",
            )
        )
    return checks


def loss_uses_item_count(model: Any) -> bool:
    """Whether the (base) model's own loss normalises by ``num_items_in_batch`` (transformers' causal and masked LM
    losses do; classification, regression and custom losses do not)."""
    from transformers.loss.loss_utils import LOSS_MAPPING

    base: Any = model.get_base_model() if hasattr(model, "get_base_model") else model
    loss: Any = LOSS_MAPPING.get(str(getattr(base, "loss_type", None)))
    return loss is not None and "num_items_in_batch" in inspect.signature(loss).parameters


class PetalColumnsMixin:
    """For `Trainer` subclasses: keep the PETAL quality column(s) of the model's adapters, check them when the
    trainer is built (`quality_checks`), and tell the Trainer whether the model's loss normalises by the item count.

    transformers guesses the latter from a ``**kwargs`` in `forward` (BERT's, ViT's) and, for a loss that is a batch
    mean, then multiplies it by the number of processes and skips the division by the gradient-accumulation steps
    (transformers#47688): a doubled step on 2 processes, tested. Unless the model declares ``accepts_loss_kwargs``,
    the mixin asks its loss function instead (`loss_uses_item_count`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self.model, "accepts_loss_kwargs"):  # type: ignore[attr-defined]  # peft forwards the lookup
            self.model_accepts_loss_kwargs = loss_uses_item_count(self.model)  # type: ignore[attr-defined]
        checks = quality_checks(self.model, self.data_collator)  # type: ignore[attr-defined]
        trainer = type(self).__name__
        check_dataset_columns(self.train_dataset, trainer, checks)  # type: ignore[attr-defined]
        check_dataset_columns(self.eval_dataset, trainer, checks, "eval_dataset")  # type: ignore[attr-defined]

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()  # type: ignore[misc]
        columns: list[str] = self._signature_columns  # type: ignore[attr-defined]
        columns += [k for k in quality_keys(self.model) if k not in columns]  # type: ignore[attr-defined]


class PetalTrainer(ModelCardMixin, PetalColumnsMixin, Trainer):
    """`Trainer` that passes a PETAL quality column (e.g. ``petal_quality``) from the dataset to the model.

    Every save writes the `petal_adapter` card as README.md in place of peft's; describe the quality input with
    ``trainer.model_card_values["quality_description"] = ...``. See `PetalColumnsMixin` for the loss scaling.
    """

    card_template = "petal_adapter"

    def card_values(self) -> dict[str, Any] | None:
        """The `petal_adapter` card's fields (None, and no card, for a model without a PETAL adapter)."""
        from hf_margin.tuners.petal.model_card import petal_adapter_fields  # needs peft

        fields = petal_adapter_fields(self.model)
        if fields is not None:
            fields["hyperparameters"] |= training_hyperparameters(self.args, self.state.global_step)
        return fields
