"""The fields of the `transicd_icd_coder` model card, read from a `TransICDModel`'s config.

TransICD (Biswas, Pham, Zhang, arXiv 2104.10652) with the multi-label LDAM loss (arXiv 1906.07413).
`TransICDModel.save_pretrained` writes the card; to add what the config does not hold (data, evaluation):

    model.save_pretrained(folder)
    save_model_card(folder, "transicd_icd_coder", **transicd_card_values(model, evaluation_results={"micro F1": 0.6}))
"""

from __future__ import annotations

from typing import Any

from hf_margin.model_cards import DEFAULT_LICENSE, NOT_EVALUATED, NOT_RECORDED
from hf_margin.models._model_card import backbone_name


def transicd_card_values(model: Any, **values: Any) -> dict[str, Any]:
    """Every field of the `transicd_icd_coder` card for `model` (a `TransICDModel`); `values` override."""
    config = model.config
    names = model.label_names
    base = backbone_name(config.backbone_config)
    if config.backbone_config is not None:
        encoder = f"the `{base}` encoder ({config.backbone_config.model_type})"
    else:
        encoder = f"the paper's own {config.num_hidden_layers}-layer transformer (hidden size {config.hidden_size})"
    ldam = config.loss == "ldam"
    defaults = {
        "model_name": "transicd",
        "repo_id": "transicd",
        "license": DEFAULT_LICENSE,
        "base_model": base,
        "encoder": encoder,
        "threshold": 0.5,
        "num_labels": len(names),
        "label_scheme": ", ".join(names[:5]) + (", ..." if len(names) > 5 else ""),
        "training_data": NOT_RECORDED,
        "test_data": "data not recorded",
        "evaluation_results": NOT_EVALUATED,
        "ldam_c": config.ldam_c if ldam else "0 (plain BCE)",
        "drw": "not recorded",
        "hyperparameters": {
            "pooling": config.pooling,
            "loss": config.loss,
            "ldam_c": config.ldam_c if ldam else 0.0,
            "label_counts (min / max)": f"{min(config.label_counts)} / {max(config.label_counts)}"
            if config.label_counts
            else "not set",
            "chunk_size": config.chunk_size
            or ("no chunking" if config.backbone_config is None else "the backbone's maximum length"),
            "attention_expansion": config.attention_expansion,
        },
    }
    return defaults | values
