"""Model card templates: every template fills into a card that huggingface_hub parses, with no placeholder left."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from hf_margin.model_cards import (
    library_versions,
    render_model_card,
    save_model_card,
    template_fields,
    template_names,
)

VERSIONS = set(library_versions())


def values_for(name: str) -> dict[str, object]:
    values: dict[str, object] = {field: f"<{field}>" for field in template_fields(name) - VERSIONS}
    values.update(base_model="sentence-transformers/all-MiniLM-L6-v2", license="apache-2.0")
    values["evaluation_results"] = {"accuracy": 0.91, "F1": 0.88}
    return values


def test_the_six_publishable_kinds_have_templates() -> None:
    assert set(template_names()) >= {
        "petal_adapter",
        "madpo_policy",
        "margin_head_classifier",
        "margin_mse_ranker",
        "transicd_icd_coder",
    }


@pytest.mark.parametrize("name", template_names())
def test_every_template_renders_into_a_hub_card(name: str, tmp_path: Path) -> None:
    card = render_model_card(name, **values_for(name))
    assert "{{" not in card.content
    assert card.data.to_dict()["license"] == "apache-2.0"
    assert card.data.to_dict()["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "| accuracy | 0.91 |" in card.content
    assert library_versions()["torch_version"] in card.content or "torch_version" not in template_fields(name)
    path = save_model_card(tmp_path / name, name, **values_for(name))
    assert ModelCard.load(path).data.to_dict() == card.data.to_dict()


def test_missing_values_and_unknown_templates_are_named() -> None:
    with pytest.raises(ValueError, match=r"needs values for: .*base_model"):
        render_model_card("petal_adapter")
    with pytest.raises(ValueError, match="unknown model card template 'nope'; known: "):
        render_model_card("nope")
