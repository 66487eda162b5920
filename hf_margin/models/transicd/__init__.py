"""TransICD (arXiv 2104.10652): code-wise attention for multi-label text, as a transformers model."""

from transformers import AutoConfig, AutoModel

from hf_margin.models.transicd.configuration_transicd import LOSSES, POOLINGS, TransICDConfig
from hf_margin.models.transicd.explain import (
    CodeExplanation,
    NoteExplanation,
    explain_note,
    explanation_html,
    plot_explanation,
)
from hf_margin.models.transicd.model_card import transicd_card_values
from hf_margin.models.transicd.modeling_transicd import (
    CodeWiseAttention,
    TransICDModel,
    TransICDOutput,
    TransICDPreTrainedModel,
    TransICDTopCodes,
)

AutoConfig.register(TransICDConfig.model_type, TransICDConfig, exist_ok=True)
AutoModel.register(TransICDConfig, TransICDModel, exist_ok=True)

__all__ = [
    "LOSSES",
    "POOLINGS",
    "CodeExplanation",
    "CodeWiseAttention",
    "NoteExplanation",
    "TransICDConfig",
    "TransICDModel",
    "TransICDOutput",
    "TransICDPreTrainedModel",
    "TransICDTopCodes",
    "explain_note",
    "explanation_html",
    "plot_explanation",
    "transicd_card_values",
]
