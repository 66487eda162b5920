"""`TransICDModel`: an encoder, code-wise attention over tokens, one score per code, and the multi-label LDAM loss."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoModel, PreTrainedModel
from transformers.utils import ModelOutput

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_positive_int
from hf_margin.functional.code_wise_attention import (
    chunked_code_wise_logits,
    code_wise_attention,
    code_wise_scores,
    label_chunk_size,
)
from hf_margin.losses.ldam import MultiLabelLDAMLoss
from hf_margin.models._model_card import ModelCardOnSaveMixin
from hf_margin.models.transicd.configuration_transicd import TransICDConfig
from hf_margin.models.transicd.model_card import transicd_card_values


@dataclass
class TransICDOutput(ModelOutput):
    """Output of `TransICDModel`.

    Args:
        loss: the multi-label loss (LDAM or BCE), when `labels` are given.
        logits: one raw score per code, shape (batch, num_labels); sigmoid(logits) >= 0.5 predicts a code.
        attentions: per-code attention weights over the tokens, shape (batch, num_labels, tokens) (None with
            mean pooling); padding positions get 0. The Trainer leaves them out of predictions.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    attentions: torch.Tensor | None = None


@dataclass
class TransICDTopCodes(ModelOutput):
    """Output of `TransICDModel.top_codes`.

    Args:
        indices: the k highest-scored codes per note, best first, shape (batch, k) (names: `model.label_names`).
        probabilities: their sigmoid probabilities, shape (batch, k).
        attentions: their attention weights over the tokens, shape (batch, k, tokens); padding gets 0.
    """

    indices: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None
    attentions: torch.Tensor | None = None


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> Tensor:
    """(length, dim) sinusoidal encodings of positions 0..length-1 (Vaswani et al.)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    encoding = torch.zeros(length, dim, device=device)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
    return encoding


class TransICDEncoder(nn.Module):
    """The paper's own encoder: token embeddings x sqrt(d) + sinusoidal positions, then a transformer encoder.

    The official code adds the encoding of the *batch index* to every token (``pe[:x.size(0)]`` on a batch-first
    tensor), so its tokens carry no position; here each token gets its own position, as the paper describes.
    """

    def __init__(self, config: TransICDConfig) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        layer = nn.TransformerEncoderLayer(
            config.hidden_size, config.num_attention_heads, config.intermediate_size, config.dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.num_hidden_layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(config.dropout)
        self.scale = math.sqrt(config.hidden_size)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.embeddings(input_ids) * self.scale
        hidden = hidden + sinusoidal_positions(input_ids.shape[1], hidden.shape[-1], hidden.device)
        return self.encoder(self.dropout(hidden), src_key_padding_mask=attention_mask == 0)


class CodeWiseAttention(nn.Module):
    """TransICD's head: ``A = softmax_tokens(W2 tanh(W1 H + b1) + b2)``, ``V_j = A_j H``, ``z_j = u_j . V_j + c_j``.

    Labels are processed `label_chunk_size` at a time (by default as many as fit in `memory_mb` MiB for the batch
    at hand), so memory stays O(batch x tokens x chunk) in the forward and backward passes whatever the number of
    labels (`hf_margin.functional.code_wise_attention`); the result equals the one-pass form.

    Args:
        hidden_size: width of the token states H.
        num_labels: number of codes L.
        expansion: width of the attention MLP as a multiple of hidden_size (2 in the official code).
        label_chunk_size: labels per chunk; None picks it from `memory_mb`.
        memory_mb: budget of a chunk's (batch, tokens, chunk) blocks, in MiB.
    """

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        expansion: int = 2,
        label_chunk_size: int | None = None,
        memory_mb: float = 16.0,
    ) -> None:
        super().__init__()
        self.hidden = nn.Linear(hidden_size, expansion * hidden_size)
        self.scores = nn.Linear(expansion * hidden_size, num_labels)
        self.code_weight = nn.Parameter(torch.empty(num_labels, hidden_size))
        self.code_bias = nn.Parameter(torch.zeros(num_labels))
        self.label_chunk_size = label_chunk_size
        self.memory_mb = memory_mb
        nn.init.xavier_uniform_(self.code_weight)

    def chunk_size(self, hidden: Tensor) -> int:
        """Labels per chunk for these (B, S, H) states: `label_chunk_size`, or what fits in `memory_mb`."""
        num_labels = self.code_weight.shape[0]
        if self.label_chunk_size is not None:
            return min(self.label_chunk_size, num_labels)
        dtype = at_least_float32(hidden[:0]).dtype
        return label_chunk_size(hidden.shape[0], hidden.shape[1], num_labels, self.memory_mb, dtype)

    def forward(
        self, hidden: Tensor, attention_mask: Tensor, output_attentions: bool | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """(B, S, H) states and (B, S) mask -> (B, L) logits and (B, L, S) attention weights or None.

        `output_attentions`: True builds the whole (B, L, S) weights, False never does, None (default) returns
        them when all labels fit in one chunk, and otherwise computes the logits chunk by chunk without them.
        """
        expanded = torch.tanh(self.hidden(hidden))
        params = (self.scores.weight, self.scores.bias, self.code_weight, self.code_bias)
        chunk = self.chunk_size(hidden)
        one_pass = chunk >= self.code_weight.shape[0] if output_attentions is None else output_attentions
        if one_pass:
            return code_wise_attention(hidden, expanded, attention_mask, *params)
        return chunked_code_wise_logits(hidden, expanded, attention_mask, *params, chunk), None

    def attention_for(self, hidden: Tensor, attention_mask: Tensor, labels: Tensor) -> Tensor:
        """(B, k, S) attention weights of k labels per note (`labels`: (B, k) indices), without the other labels."""
        expanded = torch.tanh(self.hidden(hidden))
        scores = code_wise_scores(expanded, attention_mask, self.scores.weight[labels], self.scores.bias[labels])
        return scores.softmax(dim=1).transpose(1, 2)


class TransICDPreTrainedModel(PreTrainedModel):
    config_class = TransICDConfig
    base_model_prefix = "transicd"
    main_input_name = "input_ids"
    # The loss is a per-batch mean: the Trainer must scale it for gradient accumulation itself.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, CodeWiseAttention):
            nn.init.xavier_uniform_(module.code_weight)
            nn.init.zeros_(module.code_bias)


class TransICDModel(ModelCardOnSaveMixin, TransICDPreTrainedModel):
    """TransICD: encoder (an `AutoModel` backbone or the paper's transformer) + code-wise attention + LDAM.

    Long notes are split into windows of `config.chunk_size` tokens, encoded window by window, and attended over
    as one sequence, so one code can draw on tokens from every window. Registered with `AutoConfig` /
    `AutoModel` when `hf_margin` is imported; `from_backbone` starts the encoder from pretrained weights.
    `save_pretrained` also writes the `transicd_icd_coder` model card (`transicd_card_values`) as README.md.

    Example:
        >>> model = TransICDModel.from_backbone("path/to/minilm", label_names=codes, label_counts=counts)
        >>> out = model(**tokenizer(notes, return_tensors="pt", padding=True), labels=multi_hot)
        >>> out.loss, out.logits.shape, out.attentions.shape   # (), (B, L), (B, L, tokens)
    """

    def __init__(self, config: TransICDConfig) -> None:
        super().__init__(config)
        num_labels = len(config.id2label or {})
        if num_labels < 1:
            raise ValueError("`id2label` must name at least one label (the codes)")
        backbone_config: Any = config.backbone_config
        if backbone_config is not None:
            self.backbone: nn.Module = AutoModel.from_config(backbone_config)
            hidden = int(backbone_config.hidden_size)
        else:
            self.backbone = TransICDEncoder(config)
            hidden = config.hidden_size
        if config.pooling == "attention":
            self.head: nn.Module = CodeWiseAttention(
                hidden, num_labels, config.attention_expansion, config.label_chunk_size, config.attention_memory_mb
            )
        else:
            self.head = nn.Linear(hidden, num_labels)
        if config.loss == "ldam" and config.label_counts is None:
            raise ValueError("loss='ldam' needs `label_counts` (training documents per label) in the config")
        counts = config.label_counts or [1] * num_labels
        self.loss_fct = MultiLabelLDAMLoss(counts, c=config.ldam_c if config.loss == "ldam" else 0.0)
        self.post_init()

    @classmethod
    def from_backbone(
        cls,
        backbone: str | PreTrainedModel,
        label_names: list[str],
        label_counts: list[int] | None = None,
        **config_kwargs: Any,
    ) -> TransICDModel:
        """A model whose encoder starts from pretrained weights (a path, hub id or loaded `PreTrainedModel`)."""
        pretrained = AutoModel.from_pretrained(backbone) if isinstance(backbone, str) else backbone
        config = TransICDConfig(
            backbone_config=pretrained.config.to_dict(),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            label_counts=label_counts,
            **config_kwargs,
        )
        model = cls(config)
        model.backbone.load_state_dict(pretrained.state_dict())
        return model

    card_template = "transicd_icd_coder"

    def card_values(self, **values: Any) -> dict[str, Any]:
        return transicd_card_values(self, **values)

    @property
    def label_names(self) -> list[str]:
        id2label: Any = self.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    def _chunk_size(self, length: int) -> int:
        size = self.config.chunk_size
        if size is None and self.config.backbone_config is not None:
            size = getattr(self.config.backbone_config, "max_position_embeddings", None)
        return min(size or length, length)

    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, S) ids -> (B, S) token states, encoding windows of `chunk_size` tokens separately."""
        batch, length = input_ids.shape
        size = self._chunk_size(length)
        pad = (-length) % size
        ids = F.pad(input_ids, (0, pad), value=self.config.pad_token_id or 0).view(-1, size)
        mask = F.pad(attention_mask, (0, pad), value=0).view(-1, size)
        occupied = mask.any(1)  # windows made only of padding are not encoded
        if isinstance(self.backbone, TransICDEncoder):
            states = self.backbone(ids[occupied], mask[occupied])
        else:
            states = self.backbone(input_ids=ids[occupied], attention_mask=mask[occupied]).last_hidden_state
        hidden = states.new_zeros(ids.shape[0], size, states.shape[-1])
        hidden[occupied] = states
        return hidden.view(batch, length + pad, -1)[:, :length]

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        output_attentions: bool | None = None,
        **kwargs: Any,
    ) -> TransICDOutput:
        """Score every code for each note; with `labels` (batch, num_labels) in {0, 1}, also the loss.

        `output_attentions`: True returns the (batch, num_labels, tokens) weights, False never builds them, None
        (default) returns them when every label fits in one chunk of `config.attention_memory_mb` (or
        `config.label_chunk_size`); above that the head runs chunk by chunk and returns None (see `top_codes`).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if labels is not None and (labels.dim() != 2 or labels.shape[1] != self.config.num_labels):
            raise ValueError(
                f"`labels` must be a (batch, num_labels) = (batch, {self.config.num_labels}) 0/1 matrix, got "
                f"shape {tuple(labels.shape)}"
            )
        hidden = self.encode(input_ids, attention_mask)
        attentions = None
        if isinstance(self.head, CodeWiseAttention):
            logits, attentions = self.head(hidden, attention_mask, output_attentions)
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            logits = self.head(pooled).float()
        loss = None if labels is None else self.loss_fct(logits, labels)
        return TransICDOutput(loss=loss, logits=logits, attentions=attentions)

    @torch.no_grad()
    def top_codes(self, input_ids: Tensor, attention_mask: Tensor | None = None, k: int = 5) -> TransICDTopCodes:
        """The k highest-scored codes of each note with their probabilities and attention maps, in memory bounded
        by the label chunks: the (tokens, labels) weights are built only for the k codes kept.

        Example:
            >>> top = model.top_codes(**tokenizer(notes, return_tensors="pt", padding=True), k=3)
            >>> [[model.label_names[i] for i in row] for row in top.indices.tolist()], top.attentions.shape
        """
        check_positive_int(k, "k")
        if not isinstance(self.head, CodeWiseAttention):
            raise ValueError("`top_codes` needs code-wise attention; this model uses pooling='mean'")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encode(input_ids, attention_mask)
        logits, _ = self.head(hidden, attention_mask, output_attentions=False)
        values, indices = logits.topk(min(k, logits.shape[1]), dim=1)
        attentions = self.head.attention_for(hidden, attention_mask, indices)
        return TransICDTopCodes(indices=indices, probabilities=values.sigmoid(), attentions=attentions)
