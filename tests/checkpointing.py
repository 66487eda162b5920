"""Activation checkpointing across the tested transformers range (docs/installation.md): transformers 5.23 renamed
``gradient_checkpointing_enable`` / ``is_gradient_checkpointing`` to ``activation_checkpointing_*`` (the old names
warn from then on), and the range starts at 5.20."""

from __future__ import annotations

from typing import Any


def enable_activation_checkpointing(model: Any, kwargs: dict[str, Any] | None = None) -> None:
    """Turn activation checkpointing on with whichever name the installed transformers has, and check it is on."""
    new_names = hasattr(model, "activation_checkpointing_enable")
    enable = model.activation_checkpointing_enable if new_names else model.gradient_checkpointing_enable
    if kwargs is None:
        enable()
    else:
        enable(kwargs)
    assert model.is_activation_checkpointing if new_names else model.is_gradient_checkpointing
