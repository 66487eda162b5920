"""Stateless math of every method: the modules in `hf_margin.heads` and `hf_margin.losses` call these."""

from hf_margin.functional.cosine_softmax import margin_cross_entropy, normalized_linear
from hf_margin.functional.margin_heads import (
    adaface_margin_scaler,
    adaface_target,
    arcface_loss,
    arcface_target,
    assign_sorted_margins,
    combined_target,
    cosface_loss,
    cosface_target,
    cosine_matrix,
    elastic_margins,
    margin_logits,
    margin_softmax_logits,
    margin_softmax_loss,
    margin_softmax_loss_and_cosine,
)

__all__ = [
    "adaface_margin_scaler",
    "adaface_target",
    "arcface_loss",
    "arcface_target",
    "assign_sorted_margins",
    "combined_target",
    "cosface_loss",
    "cosface_target",
    "cosine_matrix",
    "elastic_margins",
    "margin_cross_entropy",
    "margin_logits",
    "margin_softmax_logits",
    "margin_softmax_loss",
    "margin_softmax_loss_and_cosine",
    "normalized_linear",
]
