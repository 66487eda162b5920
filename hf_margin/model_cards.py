"""Model cards for what users publish: fill one of the templates in `model_cards/` and check that it parses as a
Hugging Face Hub card (`huggingface_hub.ModelCard`: YAML metadata + markdown).

    card = render_model_card("margin_head_classifier", base_model="...", evaluation_results={"TAR@FAR=1e-3": 0.91}, ...)
    card.save("my-model/README.md")  # or save_model_card("my-model", "margin_head_classifier", ...)

Library versions (hf_margin, torch, transformers, peft, trl) are filled in automatically; mappings (hyperparameters,
evaluation results) become two-column markdown tables. The `base_model` metadata is kept only when it is a Hub model
id (a local folder or an unknown model is named in the text only, as TRL does: the Hub links `base_model` to a repo).
The templates are the repository's `model_cards/` folder, shipped in the wheel as the package data
`hf_margin.model_card_templates` and read through `importlib.resources` (`$HF_MARGIN_MODEL_CARDS` points elsewhere).
`ModelCard.validate()` asks the Hub and needs the network; offline, parsing the metadata and leaving no placeholder is
what is checked here.

Trainers (MADPO, Margin-MSE, PETAL) and models (TransICD, MarginHeadModel) write their card on save through
`hf_margin.trainers._model_card` and the models' `save_pretrained`.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from hf_margin._compat import installed_version

FIELD = re.compile(r"{{\s*([a-z_]+)\s*}}")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
# "other" is the Hub's license value for "see the card": the saver cannot know its base model's and data's terms.
DEFAULT_LICENSE = "other"
NOT_EVALUATED = "Not evaluated."
NOT_RECORDED = "Not recorded."
VERSION_PACKAGES = {
    "hf_margin_version": "hf-margin",
    "torch_version": "torch",
    "transformers_version": "transformers",
    "peft_version": "peft",
    "trl_version": "trl",
}


class ModelCardWarning(UserWarning):
    """A model card could not be written; what was being saved or trained went on without it."""


@contextlib.contextmanager
def card_failure_warns(where: str) -> Iterator[None]:
    """Run a block that writes a model card: any error in it becomes a `ModelCardWarning` naming `where`.

    A card is documentation: failing to write one must never fail a `train()`, a `save_model` or a
    `save_pretrained` whose weights are already on disk.
    """
    try:
        yield
    except Exception as error:
        warnings.warn(
            f"{where}: model card not written ({type(error).__name__}: {error})", ModelCardWarning, stacklevel=3
        )


def templates_dir() -> Path:
    """The folder holding the card templates: ``$HF_MARGIN_MODEL_CARDS``, else the package data
    `hf_margin.model_card_templates` (the repository's `model_cards/`, shipped in the wheel)."""
    configured = os.environ.get("HF_MARGIN_MODEL_CARDS")
    folder = Path(configured) if configured else Path(str(resources.files("hf_margin.model_card_templates")))
    if not folder.is_dir():
        source = "$HF_MARGIN_MODEL_CARDS" if configured else "the installed package"
        raise FileNotFoundError(f"model card templates not found in {folder} (from {source})")
    return folder


def template_names() -> list[str]:
    """The available templates (file names without `.md`)."""
    return sorted(path.stem for path in templates_dir().glob("*.md"))


def template_fields(name: str) -> set[str]:
    """The placeholders ``{{ field }}`` of template `name`."""
    return set(FIELD.findall(_template(name)))


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries the cards name ("not installed" for a missing one)."""
    return {field: installed_version(package) or "not installed" for field, package in VERSION_PACKAGES.items()}


def render_model_card(name: str, **values: Any) -> Any:
    """Template `name` filled with `values` (plus the library versions) as a `huggingface_hub.ModelCard`.

    Raises ValueError naming every placeholder left without a value, or when the metadata does not parse.
    """
    from huggingface_hub import ModelCard

    template = _template(name)
    filled = library_versions() | {key: _format(value) for key, value in values.items()}
    missing = sorted(set(FIELD.findall(template)) - filled.keys())
    if missing:
        raise ValueError(f"model card {name!r} needs values for: {', '.join(missing)}")
    card = ModelCard(FIELD.sub(lambda match: filled[match.group(1)], template))
    if not card.data.to_dict():
        raise ValueError(f"model card {name!r} has no YAML metadata after filling")
    if card.data.get("base_model") is not None and not is_hub_model_id(str(card.data["base_model"])):
        card.data["base_model"] = None
    return card


def save_model_card(directory: str | Path, name: str, **values: Any) -> Path:
    """Render template `name` and write it as `directory`/README.md (where the Hub reads a model card)."""
    path = Path(directory) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    render_model_card(name, **values).save(path)
    return path


def base_model_name(model: Any) -> str:
    """The Hub id or path a model started from: a PEFT adapter's base model, else `config._name_or_path`."""
    for config in (getattr(model, "peft_config", None) or {}).values():
        if getattr(config, "base_model_name_or_path", None):
            return str(config.base_model_name_or_path)
    return str(getattr(getattr(model, "config", None), "_name_or_path", "") or "unknown")


def is_hub_model_id(name: str) -> bool:
    """Whether `name` reads as a Hub model id (``owner/name`` or ``name``), not a local folder or "unknown"."""
    return bool(HUB_ID.match(name)) and name != "unknown" and not os.path.exists(name)


def markdown_table(values: Mapping[str, Any]) -> str:
    """A two-column markdown table (``| name | value |``) of `values`."""
    rows = [f"| {key} | {item} |" for key, item in values.items()]
    return "\n".join(["| name | value |", "|---|---|", *rows])


def _template(name: str) -> str:
    path = templates_dir() / f"{name}.md"
    if not path.is_file():
        raise ValueError(f"unknown model card template {name!r}; known: {', '.join(template_names())}")
    return path.read_text()


def _format(value: Any) -> str:
    return markdown_table(value) if isinstance(value, Mapping) else str(value)
