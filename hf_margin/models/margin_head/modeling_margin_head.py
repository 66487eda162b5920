"""`MarginHeadModel`: any `AutoModel` backbone, pooled, optionally projected, and scored by a margin head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as hf_init
from transformers.utils import ModelOutput

from hf_margin.heads import HypersphericalHead, MarginHead, build_head
from hf_margin.models._model_card import ModelCardOnSaveMixin
from hf_margin.models.margin_head.configuration_margin_head import MarginHeadConfig
from hf_margin.models.margin_head.model_card import margin_head_card_values


@dataclass
class MarginHeadOutput(ModelOutput):
    """Output of `MarginHeadModel`.

    Args:
        loss: the head's loss (with the margin), when `labels` are given.
        logits: margin-free logits ``scale * cos`` against every class centre, shape (batch, num_labels).
        embeddings: the pooled (and projected) embeddings, shape (batch, embedding_size): what face
            verification compares.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None


def _hidden_size(config: Any) -> int:
    """The width of a backbone's output: `hidden_size` for transformers, the last of `hidden_sizes` for CNNs."""
    if getattr(config, "hidden_size", None):
        return int(config.hidden_size)
    if getattr(config, "hidden_sizes", None):
        return int(config.hidden_sizes[-1])
    raise ValueError(
        f"cannot tell the output width of a {type(config).__name__} backbone (no `hidden_size` or "
        "`hidden_sizes`); set `embedding_size` and use pooling='pooler', or pick another backbone"
    )


def pool(outputs: Any, attention_mask: Tensor | None, pooling: str) -> Tensor:
    """One vector per sample from a backbone output: masked mean/max over tokens, CLS, or the pooler output.

    4-D feature maps (batch, channels, height, width) are pooled over their spatial positions.
    """
    if pooling == "pooler":
        pooled = getattr(outputs, "pooler_output", None)
        if pooled is None:
            raise ValueError("pooling='pooler' needs a backbone that returns `pooler_output`; this one does not")
        return pooled.flatten(1)
    hidden = outputs.last_hidden_state
    if hidden.dim() == 4:
        hidden = hidden.flatten(2).transpose(1, 2)
    if pooling == "cls":
        return hidden[:, 0]
    if attention_mask is None or attention_mask.dim() != 2 or attention_mask.shape[1] != hidden.shape[1]:
        mask = hidden.new_ones(hidden.shape[:2])
    else:
        mask = attention_mask.to(hidden.dtype)
    if pooling == "mean":
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
    return hidden.masked_fill(mask.unsqueeze(-1) == 0, torch.finfo(hidden.dtype).min).amax(1)


class MarginHeadPreTrainedModel(PreTrainedModel):
    config_class = MarginHeadConfig
    base_model_prefix = "backbone"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    # The loss is a per-batch mean: the Trainer must scale it for gradient accumulation itself.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, MarginHead):
            module.reset_parameters(hf_init)


class MarginHeadModel(ModelCardOnSaveMixin, MarginHeadPreTrainedModel):
    """A backbone (`AutoModel` from `config.backbone_config`), pooling, optional projection and a margin head.

    Returns `MarginHeadOutput` (loss, logits, embeddings). Trains with `Trainer` (labels in a ``labels``
    column), saves and loads with `save_pretrained` / `from_pretrained`, and is registered with `AutoConfig` /
    `AutoModel` once `hf_margin` is imported. Build one on pretrained backbone weights with `from_backbone`.
    `save_pretrained` also writes the `margin_head_classifier` model card (`margin_head_card_values`) as README.md.

    Example:
        >>> model = MarginHeadModel.from_backbone("path/to/minilm", num_labels=40, head_type="arcface")
        >>> out = model(**tokenizer(texts, return_tensors="pt", padding=True), labels=labels)
        >>> out.loss.backward(); out.embeddings.shape
    """

    def __init__(self, config: MarginHeadConfig) -> None:
        super().__init__(config)
        self.backbone = AutoModel.from_config(config.backbone_config)
        hidden = _hidden_size(config.backbone_config)
        self.projection = nn.Linear(hidden, config.embedding_size) if config.embedding_size else None
        if config.num_labels is None:
            raise ValueError("`num_labels` must be set in the config (the number of classes)")
        self.head = build_head(
            config.head_type, config.embedding_size or hidden, config.num_labels, **(config.head_kwargs or {})
        )
        self.post_init()

    card_template = "margin_head_classifier"

    def card_values(self, **values: Any) -> dict[str, Any]:
        return margin_head_card_values(self, **values)

    @classmethod
    def from_backbone(
        cls,
        backbone: str | PreTrainedModel,
        num_labels: int,
        head_type: str = "arcface",
        head_kwargs: dict[str, Any] | None = None,
        pooling: str = "mean",
        embedding_size: int | None = None,
        **backbone_kwargs: Any,
    ) -> MarginHeadModel:
        """A model whose backbone starts from pretrained weights (a path, hub id or loaded `PreTrainedModel`)."""
        pretrained = AutoModel.from_pretrained(backbone, **backbone_kwargs) if isinstance(backbone, str) else backbone
        config = MarginHeadConfig(
            backbone_config=pretrained.config.to_dict(),
            head_type=head_type,
            head_kwargs=head_kwargs,
            pooling=pooling,
            embedding_size=embedding_size,
        )
        config.num_labels = num_labels
        model = cls(config)
        model.backbone.load_state_dict(pretrained.state_dict())
        return model

    def add_classes(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Add classes without gradient steps by imprinting (`HypersphericalHead.add_classes`; head_type
        "hyperspherical" only) and raise ``config.num_labels`` to match, so `save_pretrained` / `from_pretrained`
        keep them. Returns the new class vectors.

        Args:
            embeddings: (N, embedding_size) embeddings of the new classes' samples (this model's ``embeddings``).
            labels: (N,) their class indices, ``num_labels .. num_labels + K - 1``.

        Example:
            >>> with torch.no_grad():
            ...     shots = model(**inputs).embeddings
            >>> model.add_classes(shots, torch.tensor([40, 40, 41]))  # model.config.num_labels is now 42
        """
        if not isinstance(self.head, HypersphericalHead):
            raise TypeError(
                f"add_classes needs head_type='hyperspherical' (imprinted class vectors), got "
                f"head_type={self.config.head_type!r}"
            )
        new = self.head.add_classes(embeddings, labels)
        self.config.num_labels = self.head.num_classes
        return new

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        pixel_values: Tensor | None = None,
        labels: Tensor | None = None,
        **backbone_kwargs: Any,
    ) -> MarginHeadOutput:
        """Embed the inputs; with `labels`, also the head's loss. Extra keyword arguments go to the backbone."""
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "pixel_values": pixel_values,
        }
        outputs = self.backbone(**{k: v for k, v in inputs.items() if v is not None}, **backbone_kwargs)
        embeddings = pool(outputs, attention_mask, self.config.pooling)
        if self.projection is not None:
            embeddings = self.projection(embeddings)
        if labels is None:
            return MarginHeadOutput(logits=self.head.get_logits(embeddings), embeddings=embeddings)
        loss, logits = self.head.loss_and_logits(embeddings, labels)
        return MarginHeadOutput(loss=loss, logits=logits, embeddings=embeddings)
