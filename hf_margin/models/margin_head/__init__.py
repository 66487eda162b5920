"""Any `AutoModel` backbone (text or vision) + pooling + a margin head, as a transformers model."""

from transformers import AutoConfig, AutoModel

from hf_margin.models.margin_head.configuration_margin_head import POOLINGS, MarginHeadConfig
from hf_margin.models.margin_head.model_card import margin_head_card_values
from hf_margin.models.margin_head.modeling_margin_head import (
    MarginHeadModel,
    MarginHeadOutput,
    MarginHeadPreTrainedModel,
)

AutoConfig.register(MarginHeadConfig.model_type, MarginHeadConfig, exist_ok=True)
AutoModel.register(MarginHeadConfig, MarginHeadModel, exist_ok=True)

__all__ = [
    "POOLINGS",
    "MarginHeadConfig",
    "MarginHeadModel",
    "MarginHeadOutput",
    "MarginHeadPreTrainedModel",
    "margin_head_card_values",
]
