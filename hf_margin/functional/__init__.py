"""Stateless math of every method: the modules in `hf_margin.heads` and `hf_margin.losses` call these."""

from hf_margin.functional.margin_heads import (
    adaface_margin_scaler,
    adaface_target,
    arcface_loss,
    arcface_target,
    combined_target,
    cosface_loss,
    cosface_target,
    cosine_matrix,
    elastic_margins,
    margin_logits,
    margin_softmax_logits,
    margin_softmax_loss,
    target_cosine,
)

__all__ = [
    "adaface_margin_scaler",
    "adaface_target",
    "arcface_loss",
    "arcface_target",
    "combined_target",
    "cosface_loss",
    "cosface_target",
    "cosine_matrix",
    "elastic_margins",
    "margin_logits",
    "margin_softmax_logits",
    "margin_softmax_loss",
    "target_cosine",
]
