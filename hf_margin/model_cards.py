"""Model cards for what users publish: fill one of the templates in `model_cards/` and check that it parses as a
Hugging Face Hub card (`huggingface_hub.ModelCard`: YAML metadata + markdown).

    card = render_model_card("margin_head_classifier", base_model="...", evaluation_results={"TAR@FAR=1e-3": 0.91}, ...)
    card.save("my-model/README.md")  # or save_model_card("my-model", "margin_head_classifier", ...)

Library versions (hf_margin, torch, transformers, peft, trl) are filled in automatically; mappings (hyperparameters,
evaluation results) become two-column markdown tables. The templates live in the repository's `model_cards/`
folder (`$HF_MARGIN_MODEL_CARDS` points elsewhere). `ModelCard.validate()` asks the Hub and needs the network;
offline, parsing the metadata and leaving no placeholder is what is checked here.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FIELD = re.compile(r"{{\s*([a-z_]+)\s*}}")
VERSION_PACKAGES = {
    "hf_margin_version": "hf-margin",
    "torch_version": "torch",
    "transformers_version": "transformers",
    "peft_version": "peft",
    "trl_version": "trl",
}


def templates_dir() -> Path:
    """The folder holding the card templates (``$HF_MARGIN_MODEL_CARDS`` or the repository's `model_cards/`)."""
    folder = Path(os.environ.get("HF_MARGIN_MODEL_CARDS") or Path(__file__).resolve().parent.parent / "model_cards")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"model card templates not found in {folder}: set HF_MARGIN_MODEL_CARDS to the repository's model_cards/"
        )
    return folder


def template_names() -> list[str]:
    """The available templates (file names without `.md`)."""
    return sorted(path.stem for path in templates_dir().glob("*.md"))


def template_fields(name: str) -> set[str]:
    """The placeholders ``{{ field }}`` of template `name`."""
    return set(FIELD.findall(_template(name)))


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries the cards name ("not installed" for a missing one)."""
    versions = {}
    for field, package in VERSION_PACKAGES.items():
        try:
            versions[field] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[field] = "not installed"
    return versions


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
    return card


def save_model_card(directory: str | Path, name: str, **values: Any) -> Path:
    """Render template `name` and write it as `directory`/README.md (where the Hub reads a model card)."""
    path = Path(directory) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    render_model_card(name, **values).save(path)
    return path


def _template(name: str) -> str:
    path = templates_dir() / f"{name}.md"
    if not path.is_file():
        raise ValueError(f"unknown model card template {name!r}; known: {', '.join(template_names())}")
    return path.read_text()


def _format(value: Any) -> str:
    if isinstance(value, Mapping):
        rows = [f"| {key} | {item} |" for key, item in value.items()]
        return "\n".join(["| name | value |", "|---|---|", *rows])
    return str(value)
