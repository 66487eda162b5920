"""`save_pretrained` that also writes the model's filled card (a `model_cards/` template) as README.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from hf_margin.model_cards import save_model_card


def backbone_name(config: Any) -> str:
    """The Hub id or path a backbone config was loaded from ("unknown" when it was built from a config)."""
    return str(getattr(config, "_name_or_path", "") or "unknown") if config is not None else "unknown"


class ModelCardOnSaveMixin:
    """For `PreTrainedModel`s: `save_pretrained` writes `card_template` filled with `card_values()` after the weights.

    Only the main process writes (``is_main_process=False`` writes nothing). With ``push_to_hub=True``,
    transformers uploads inside `save_pretrained` with its own card, before ours is written: push the folder
    (``huggingface_hub.upload_folder``) to publish ours.
    """

    card_template: ClassVar[str]

    def card_values(self, **values: Any) -> dict[str, Any]:
        """Every field of the card, from the config; `values` override (e.g. `evaluation_results`)."""
        raise NotImplementedError

    def save_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        """`PreTrainedModel.save_pretrained` (same arguments), then the card as README.md (main process only)."""
        result = super().save_pretrained(*args, **kwargs)  # type: ignore[misc]
        directory = Path(kwargs["save_directory"] if "save_directory" in kwargs else args[0])
        if kwargs.get("is_main_process", args[1] if len(args) > 1 else True):
            name = directory.resolve().name
            save_model_card(directory, self.card_template, **self.card_values(model_name=name, repo_id=name))
        return result
