"""Configuration of `TransICDModel`."""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from hf_margin._validation import check_choice, check_in_range, check_positive_int, check_positive_number

POOLINGS: tuple[str, ...] = ("attention", "mean")
LOSSES: tuple[str, ...] = ("ldam", "bce")


class TransICDConfig(PreTrainedConfig):
    r"""Configuration of a `TransICDModel`: an encoder, code-wise attention (or mean pooling) and per-code scores.

    TransICD (Biswas, Pham, Zhang, arXiv 2104.10652). Label names live in `id2label`, per-label training counts in
    `label_counts`, so a saved model predicts code names and keeps its LDAM margins.

    Args:
        backbone_config (`dict` or `PreTrainedConfig`, *optional*):
            An `AutoModel` encoder (e.g. MiniLM); `None` uses the paper's own transformer over token embeddings.
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, dropout:
            The paper's own encoder (defaults 30522, 128, 2, 8, 512, 0.1), ignored with a backbone.
        pad_token_id (`int`, defaults to 0): the padding id of the own encoder's embedding.
        chunk_size (`int`, *optional*): tokens per encoder pass; longer notes are split into windows of this size
            and attended over as one sequence (defaults to the backbone's `max_position_embeddings`, or no chunking
            for the own encoder).
        label_chunk_size (`int`, *optional*): labels per chunk of the code-wise attention; `None` (default) picks
            the largest chunk whose (batch, tokens, chunk) blocks fit in `attention_memory_mb` for the batch at hand.
            Chunking bounds memory at any label count (e.g. ICD-10-CM's ~75,000 codes) with the same result.
        attention_memory_mb (`float`, defaults to 16.0): the memory budget of one label chunk, in MiB (float32
            scores: 16 bytes per note x token x label).
        pooling (`str`, defaults to `"attention"`): `"attention"` (code-wise attention, the paper) or `"mean"`
            (masked mean + one linear layer, the paper's "Transformer" baseline).
        attention_expansion (`int`, defaults to 2): the attention MLP's width as a multiple of the hidden size.
        loss (`str`, defaults to `"ldam"`): `"ldam"` (BCE after subtracting C / n_j^(1/4) from positive logits)
            or `"bce"`.
        ldam_c (`float`, defaults to 3.0): C of the LDAM margins.
        label_counts (`list[int]`, *optional*): training documents per label (needed for `loss="ldam"`).
        id2label (`dict`): label index -> code name (sets `num_labels`).

    Example:
        >>> config = TransICDConfig(id2label={0: "A00", 1: "J45"}, label_counts=[120, 8])
        >>> model = TransICDModel(config)
    """

    model_type = "transicd"
    # The attention weights are (batch, labels, tokens): the Trainer must not gather them over an evaluation set.
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["attentions"]
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="bert", optional=True)
    }

    backbone_config: dict | PreTrainedConfig | None = None
    vocab_size: int = 30522
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 8
    intermediate_size: int = 512
    dropout: float = 0.1
    pad_token_id: int | None = 0
    chunk_size: int | None = None
    label_chunk_size: int | None = None
    attention_memory_mb: float = 16.0
    pooling: str = "attention"
    attention_expansion: int = 2
    loss: str = "ldam"
    ldam_c: float = 3.0
    label_counts: list[int] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        check_choice(self.pooling, "pooling", POOLINGS)
        check_choice(self.loss, "loss", LOSSES)
        check_positive_int(self.attention_expansion, "attention_expansion")
        check_in_range(self.ldam_c, "ldam_c", 0.0, float("inf"))
        if self.chunk_size is not None:
            check_positive_int(self.chunk_size, "chunk_size")
        if self.label_chunk_size is not None:
            check_positive_int(self.label_chunk_size, "label_chunk_size")
        check_positive_number(self.attention_memory_mb, "attention_memory_mb")
        super().__post_init__(**kwargs)
        if self.label_counts is not None:
            self.label_counts = [int(n) for n in self.label_counts]
            if len(self.label_counts) != self.num_labels:
                raise ValueError(
                    f"`label_counts` needs one count per label ({self.num_labels}), got {len(self.label_counts)}"
                )
