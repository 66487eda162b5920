"""Configuration of `MarginHeadModel`."""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from hf_margin._validation import check_choice, check_positive_int
from hf_margin.heads import HEAD_TYPES

POOLINGS: tuple[str, ...] = ("mean", "cls", "max", "pooler")


class MarginHeadConfig(PreTrainedConfig):
    r"""Configuration of a `MarginHeadModel`: a backbone, a pooling, an optional projection and a margin head.

    Args:
        backbone_config (`dict` or `PreTrainedConfig`, *optional*, defaults to a BERT config):
            Configuration of the `AutoModel` backbone (text or vision).
        head_type (`str`, *optional*, defaults to `"arcface"`):
            One of `hf_margin.heads.HEAD_TYPES`: softmax, arcface, cosface, combined, elastic_arcface,
            elastic_cosface, adaface, hyperspherical (classes can then be added with
            `MarginHeadModel.add_classes`).
        head_kwargs (`dict`, *optional*):
            Keyword arguments of the head (e.g. `{"margin": 0.5, "scale": 64}`).
        pooling (`str`, *optional*, defaults to `"mean"`):
            How the backbone's output becomes one vector: `"mean"` (masked mean over tokens or spatial
            positions), `"cls"` (first token), `"max"` (masked max) or `"pooler"` (the backbone's pooler output).
        embedding_size (`int`, *optional*):
            Size of a linear projection from the backbone's hidden size to the embedding; none when unset.
        num_labels (`int`):
            Number of classes (identities), as in every transformers classification config.

    Example:
        >>> config = MarginHeadConfig(backbone_config=BertConfig().to_dict(), head_type="cosface", num_labels=10)
        >>> model = MarginHeadModel(config)
    """

    model_type = "margin_head"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")
    }

    backbone_config: dict | PreTrainedConfig | None = None
    head_type: str = "arcface"
    head_kwargs: dict | None = None
    pooling: str = "mean"
    embedding_size: int | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        check_choice(self.head_type, "head_type", tuple(sorted(HEAD_TYPES)))
        check_choice(self.pooling, "pooling", POOLINGS)
        if self.embedding_size is not None:
            check_positive_int(self.embedding_size, "embedding_size")
        self.head_kwargs = dict(self.head_kwargs or {})
        super().__post_init__(**kwargs)
