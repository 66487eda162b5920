"""Our filled model card (a `model_cards/` template) written by the hf_margin trainers instead of the library's.

transformers' `Trainer.push_to_hub` and TRL's `_save_checkpoint` call `create_model_card`, which writes the
library's generic card as ``args.output_dir/README.md``; `PeftModel.save_pretrained` (called by `save_model`) writes
peft's. `ModelCardMixin` replaces both: `create_model_card` writes our template into ``args.output_dir``, and every
`save_model` writes it into the folder it saved (a checkpoint folder included), after the weights, so it overwrites
peft's README rather than being merged into it (loading an adapter reads `adapter_config.json` only).

Values come from what the trainer knows: the base model (`config._name_or_path`, or a PEFT adapter's
`base_model_name_or_path`), the method's own arguments (`card_values()` of each trainer), the training data
(`train_dataset.info.dataset_name` or the `dataset_name` / `dataset` argument of `create_model_card`, and its size),
the last evaluation in ``state.log_history`` and the common training hyperparameters. The license defaults to
``"other"``: a trainer cannot know the terms of its base model and data, and ``other`` is the Hub's value for
"see the card"; pass ``license=`` or set ``trainer.model_card_values["license"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from hf_margin.model_cards import (
    DEFAULT_LICENSE,
    NOT_EVALUATED,
    NOT_RECORDED,
    base_model_name,
    card_failure_warns,
    markdown_table,
    render_model_card,
    template_fields,
)

logger = logging.getLogger(__name__)

_TIMINGS = ("_runtime", "_samples_per_second", "_steps_per_second")


def adapter_description(model: Any) -> str:
    """What was trained: the PEFT adapter (type and rank) or, without one, every weight."""
    configs = getattr(model, "peft_config", None) or {}
    if not configs:
        return "all weights trained"
    config = next(iter(configs.values()))
    kind = getattr(config.peft_type, "value", config.peft_type)
    rank = f" of rank {config.r}" if hasattr(config, "r") else ""
    return f"a {kind} adapter{rank} on the frozen base model"


def number(value: Any) -> str:
    """A metric as text: floats to 6 significant digits, everything else as is."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def evaluation_results(log_history: list[dict[str, Any]]) -> str:
    """The last evaluation's metrics in `log_history` as a markdown table (timings left out), or "Not evaluated."."""

    def metrics(entry: dict[str, Any]) -> dict[str, str]:
        wanted = (k for k, v in entry.items() if isinstance(v, int | float) and k.startswith("eval_"))
        return {key: number(entry[key]) for key in wanted if not key.endswith(_TIMINGS)}

    steps = [entry.get("step") for entry in log_history if metrics(entry)]
    if not steps:
        return NOT_EVALUATED
    last: dict[str, str] = {}
    for entry in log_history:  # an evaluation may log in several entries (e.g. the loss, then re-ranking metrics)
        if entry.get("step") == steps[-1]:
            last.update(metrics(entry))
    return f"Last evaluation, at step {steps[-1]}:\n\n{markdown_table(last)}"


def training_data(dataset: Any, name: str | None = None) -> str:
    """The training data's name (given, or `dataset.info.dataset_name`) and size, as far as they are known."""
    name = name or getattr(getattr(dataset, "info", None), "dataset_name", None)
    try:
        size = f"{len(dataset):,} training rows"
    except TypeError:  # no dataset, or a streaming one
        size = None
    if name and size:
        return f"`{name}` ({size})"
    if name or size:
        return f"`{name}`" if name else f"A data set whose name was not recorded ({size})"
    return NOT_RECORDED


def training_hyperparameters(args: Any, global_step: int) -> dict[str, Any]:
    """The common `TrainingArguments` that shape training, and the number of optimizer steps taken."""
    world = getattr(args, "world_size", 1)
    length = {"max_steps": args.max_steps} if args.max_steps > 0 else {"num_train_epochs": args.num_train_epochs}
    return {
        "learning_rate": args.learning_rate,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "total_train_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * world,
        **length,
        "optimizer": getattr(args.optim, "value", args.optim),
        "lr_scheduler_type": getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type),
        "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay,
        "mixed_precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "no",
        "seed": args.seed,
        "trained_steps": global_step,
    }


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


class ModelCardMixin:
    """For `Trainer` subclasses: write template `card_template` as README.md on `save_model` and `create_model_card`.

    Subclasses set `card_template` and implement `card_values()` (the method's fields; None skips the card).
    `model_card_values` overrides any field for every later card (e.g. ``reward_model``, ``license``).
    """

    card_template: ClassVar[str]

    @property
    def model_card_values(self) -> dict[str, Any]:
        """Fields that override what the trainer knows, for every card it writes."""
        if "_model_card_values" not in self.__dict__:
            self.__dict__["_model_card_values"] = {}
        values: dict[str, Any] = self.__dict__["_model_card_values"]
        return values

    def card_values(self) -> dict[str, Any] | None:
        """The template's method-specific fields; None when the model has nothing to describe."""
        raise NotImplementedError

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Write our card as ``args.output_dir/README.md`` (main process only); what `push_to_hub` uploads.

        Takes the keyword arguments of transformers' `create_model_card` (language, license, tags, model_name,
        finetuned_from, tasks, dataset_tags, dataset, dataset_args) and of TRL's (model_name, dataset_name, tags):
        `tags`, `language` and `dataset_tags` go into the metadata, `finetuned_from` replaces the base model,
        `dataset_name` / `dataset` name the data, `license` and `model_name` fill their fields; other keywords fill
        template fields of the same name, and the rest (``tasks``, ``dataset_args``) are ignored. Keywords only:
        the two libraries order their parameters differently.
        """
        if args:
            raise TypeError(f"create_model_card takes keyword arguments only, got positional {args}")
        if self.is_world_process_zero():  # type: ignore[attr-defined]
            with card_failure_warns(f"{type(self).__name__}.create_model_card"):
                self._card_from_keywords(**kwargs)

    def _card_from_keywords(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        tags: str | list[str] | None = None,
        license: str | None = None,
        language: str | list[str] | None = None,
        finetuned_from: str | None = None,
        dataset: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        **values: Any,
    ) -> None:
        named = dataset_name or ", ".join(_as_list(dataset)) or None
        overrides = {key: value for key, value in values.items() if key in template_fields(self.card_template)}
        if license is not None:
            overrides["license"] = license
        if finetuned_from is not None:
            overrides["base_model"] = finetuned_from
        self.write_model_card(
            self.args.output_dir,  # type: ignore[attr-defined]
            model_name,
            named,
            overrides,
            tags=_as_list(tags),
            language=language,
            datasets=_as_list(dataset_tags),
        )

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The Trainer's `save_model`, then our card in the same folder (main process only; a failure warns)."""
        trainer: Any = self
        super().save_model(output_dir, _internal_call)  # type: ignore[misc]
        if trainer.args.should_save:
            with card_failure_warns(f"{type(self).__name__}.save_model"):
                self.write_model_card(output_dir or trainer.args.output_dir)

    def write_model_card(
        self,
        directory: str | Path,
        model_name: str | None = None,
        dataset_name: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        tags: list[str] | None = None,
        language: str | list[str] | None = None,
        datasets: list[str] | None = None,
    ) -> Path | None:
        """Render the card from what the trainer knows and write it as `directory`/README.md (replacing any)."""
        trainer: Any = self
        specific = self.card_values()
        if specific is None:
            logger.warning(
                "%s: no model card written to %s (%s has no %s to describe)",
                type(self).__name__,
                directory,
                type(trainer.model).__name__,
                self.card_template,
            )
            return None
        args = trainer.args
        name = model_name or (args.hub_model_id or "").split("/")[-1] or Path(args.output_dir).name
        values = {
            "model_name": name,
            "repo_id": args.hub_model_id or name,
            "license": DEFAULT_LICENSE,
            "base_model": base_model_name(trainer.model),
            "training_data": training_data(trainer.train_dataset, dataset_name),
            "evaluation_results": evaluation_results(trainer.state.log_history),
        }
        values |= specific | self.model_card_values | dict(overrides or {})
        card = render_model_card(self.card_template, **values)
        card.data.tags = list(dict.fromkeys([*(card.data.tags or []), *(tags or [])]))
        if card.data.base_model and card.data.library_name == "peft":
            card.data.tags.append(f"base_model:adapter:{card.data.base_model}")  # what peft's own card adds
        if language:
            card.data.language = language
        if datasets:
            card.data.datasets = datasets
        path = Path(directory) / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        card.save(path)
        return path
