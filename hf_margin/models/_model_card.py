"""`save_pretrained` that also writes the model's filled card (a `model_cards/` template) as README.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from huggingface_hub import ModelCard

from hf_margin.model_cards import card_failure_warns, render_model_card, save_model_card


def backbone_name(config: Any) -> str:
    """The Hub id or path a backbone config was loaded from ("unknown" when it was built from a config)."""
    return str(getattr(config, "_name_or_path", "") or "unknown") if config is not None else "unknown"


class ModelCardOnSaveMixin:
    """For `PreTrainedModel`s: `save_pretrained` writes `card_template` filled with `card_values()` after the weights.

    Only the main process writes (``is_main_process=False`` writes nothing). `push_to_hub` uploads our card too:
    transformers writes the Hub's existing (or a generic) card over ours just before uploading, and
    `_upload_modified_files` puts ours back with that card's tags (``save_pretrained(push_to_hub=True)`` uploads
    through the same method, so it also sends ours).
    """

    card_template: ClassVar[str]

    def card_values(self, **values: Any) -> dict[str, Any]:
        """Every field of the card, from the config; `values` override (e.g. `evaluation_results`)."""
        raise NotImplementedError

    def save_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        """`PreTrainedModel.save_pretrained` (same arguments), then the card as README.md (main process only; a
        failure to write it warns and leaves the saved weights)."""
        result = super().save_pretrained(*args, **kwargs)  # type: ignore[misc]
        directory = Path(kwargs["save_directory"] if "save_directory" in kwargs else args[0])
        if kwargs.get("is_main_process", args[1] if len(args) > 1 else True):
            name = directory.resolve().name
            with card_failure_warns(f"{type(self).__name__}.save_pretrained"):
                save_model_card(directory, self.card_template, **self.card_values(model_name=name, repo_id=name))
        return result

    def _upload_modified_files(self, working_dir: str | os.PathLike, repo_id: str, *args: Any, **kwargs: Any) -> Any:
        """Write our card (keeping the tags of the card transformers put there) before transformers uploads."""
        with card_failure_warns(f"{type(self).__name__}.push_to_hub"):
            readme = Path(working_dir) / "README.md"
            tags = (ModelCard.load(readme).data.tags or []) if readme.is_file() else []
            name = repo_id.split("/")[-1]
            card = render_model_card(self.card_template, **self.card_values(model_name=name, repo_id=repo_id))
            card.data.tags = list(dict.fromkeys([*(card.data.tags or []), *tags]))
            card.save(readme)
        return super()._upload_modified_files(working_dir, repo_id, *args, **kwargs)  # type: ignore[misc]
