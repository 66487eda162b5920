"""The fields of the `petal_adapter` model card, read from a PETAL model (PETALface, arXiv 2412.07771).

`hf_margin.trainers.PetalTrainer` writes the card on every save. A PETAL model saved outside it (with
`PeftModel.save_pretrained`, which writes peft's own README.md) gets ours by writing it afterwards:

    model.save_pretrained(folder)
    save_model_card(folder, "petal_adapter", **petal_card_values(model, evaluation_results={"TAR@FAR=1e-4": 0.91}))

`PeftModel.from_pretrained` reads only `adapter_config.json` and the weights, so replacing peft's README loses
nothing it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hf_margin.model_cards import DEFAULT_LICENSE, NOT_EVALUATED, NOT_RECORDED, base_model_name
from hf_margin.tuners.petal.config import PetalConfig


def petal_config(model: Any, adapter_name: str | None = None) -> PetalConfig | None:
    """The PETAL config of `adapter_name` (default: the first PETAL adapter) of a peft model, or None."""
    configs: dict[str, Any] = getattr(model, "peft_config", None) or {}
    if adapter_name is not None:
        config = configs.get(adapter_name)
        return config if isinstance(config, PetalConfig) else None
    return next((c for c in configs.values() if isinstance(c, PetalConfig)), None)


def _names(names: Any) -> str:
    """A module list (peft keeps a set) or a regex, as text."""
    return names if isinstance(names, str) else ", ".join(sorted(names or []))


def petal_adapter_fields(model: Any, adapter_name: str | None = None) -> dict[str, Any] | None:
    """The PETAL-specific card fields (modules, rank, trainable share, quality input, adapter hyperparameters).

    None when `model` has no PETAL adapter.
    """
    config = petal_config(model, adapter_name)
    if config is None:
        return None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    key = config.quality_key
    bounds = "clipped to [0, 1]" if config.clip_quality else "which must lie in [0, 1]"
    default = "" if config.default_quality is None else f"; a call without q uses q = {config.default_quality}"
    return {
        "target_modules": _names(
            config.target_modules
            if isinstance(config.target_modules, str)
            else set(config.target_modules or []) - set(config.single_branch_modules or [])
        ),
        "r": config.r,
        "single_branch_modules": f"`{_names(config.single_branch_modules)}`"
        if config.single_branch_modules
        else "no modules",
        "trainable_share": f"{trainable / max(total, 1):.2%} ({trainable:,} of {total:,} parameters)",
        "quality_description": f"One quality q per sample, given as `{key}=` (the data's `{key}` column under "
        f"`PetalTrainer`), {bounds}{default}. How q was computed from the images was not recorded with the "
        "adapter: set the `quality_description` card value to the scoring and calibration used.",
        "hyperparameters": {
            "r": config.r,
            "scale": config.scale,
            "dropout": config.dropout,
            "dropout_position": config.dropout_position,
            "bias": config.bias,
            "quality_key": key,
        },
    }


def petal_card_values(model: Any, adapter_name: str | None = None, **values: Any) -> dict[str, Any]:
    """Every field of the `petal_adapter` card for `model`, with `values` overriding (e.g. `evaluation_results`).

    Raises ValueError when `model` has no PETAL adapter.
    """
    fields = petal_adapter_fields(model, adapter_name)
    if fields is None:
        raise ValueError(f"`model` has no PETAL adapter{'' if adapter_name is None else f' {adapter_name!r}'}")
    base = base_model_name(model)
    name = f"{Path(base).name}-petal" if base != "unknown" else "petal-adapter"
    defaults = {
        "model_name": name,
        "repo_id": name,
        "license": DEFAULT_LICENSE,
        "base_model": base,
        "training_data": NOT_RECORDED,
        "evaluation_results": NOT_EVALUATED,
    }
    return defaults | fields | values
