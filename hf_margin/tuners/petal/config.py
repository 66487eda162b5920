"""Configuration of PETAL, the quality-gated dual-LoRA PEFT method of PETALface."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

from peft.config import PeftConfig


class HfMarginPeftType(str, enum.Enum):
    """PEFT method types defined outside peft (peft's own `PeftType` enum is closed).

    A str-Enum compares and hashes equal to its value, so ``"PETAL"`` in a saved ``adapter_config.json``
    round-trips through peft's mappings (the approach peft's maintainers suggest in huggingface/peft#2634).
    """

    PETAL = "PETAL"


@dataclass
class PetalConfig(PeftConfig):
    r"""Configuration of a [`PetalModel`]: two LoRA branches per adapted layer, blended per sample by a quality q.

    ``y = W x + b + s [(1 - q) B1 A1 x + q B2 A2 x]`` for a sample of quality q in [0, 1]: branch 1 is the
    low-quality (low-resolution) encoder, branch 2 the high-quality one. Paper: Narayan et al., "PETALface:
    Parameter Efficient Transfer Learning for Low-resolution Face Recognition", arXiv 2412.07771.

    Args:
        r (`int`, *optional*, defaults to `8`):
            Rank of each branch (the paper's scripts use 8). A two-branch layer holds rank-2r factors.
        scale (`float`, *optional*, defaults to `1.0`):
            The multiplier ``s`` of the adapter output (the official code's ``lora_scale``, default 1). For LoRA's
            convention, pass ``lora_alpha / r``.
        dropout (`float`, *optional*, defaults to `0.1`):
            Dropout probability (the official code's 0.1).
        dropout_position (`str`, *optional*, defaults to `"output"`):
            `"output"` drops each branch's output independently (the official code); `"input"` drops the layer
            input once for both branches (LoRA's convention, and slightly cheaper).
        target_modules (`list[str]` or `str`, *optional*):
            Names (suffix match) or a regex of the `nn.Linear` / `nn.Conv2d` modules to adapt, e.g. `["qkv"]` for a
            Swin, `["query", "key", "value"]` for BERT and ViT.
        single_branch_modules (`list[str]`, *optional*):
            Modules that get one plain LoRA branch that ignores q (the paper's final feature projection). They are
            adapted even when a list `target_modules` does not name them; a regex `target_modules` must match them.
        exclude_modules (`list[str]` or `str`, *optional*):
            Modules never to adapt.
        quality_key (`str`, *optional*, defaults to `"petal_quality"`):
            The forward keyword (and dataset column) carrying q, one value per sample. It never reaches the base model.
        default_quality (`float`, *optional*):
            q to use when a forward call gives none; without it, a call without q is an error.
        clip_quality (`bool`, *optional*, defaults to `True`):
            Clip q to [0, 1]. The paper's `0.5 + (score - threshold)` is not clipped in the official code; with
            clipping off, values outside [0, 1] are an error.
        init_weights (`bool`, *optional*, defaults to `True`):
            A ~ N(0, (1/r)^2) and B = 0 (the official code), so the adapted model starts equal to the base model.
            `False` draws B like A (for tests).
        bias (`str`, *optional*, defaults to `"none"`):
            `"none"`, `"all"` (train every bias) or `"petal_only"` (train the biases of adapted layers).
        layers_to_transform (`list[int]` or `int`, *optional*):
            Only adapt layers with these indices.
        layers_pattern (`list[str]` or `str`, *optional*):
            The name of the `nn.ModuleList` that `layers_to_transform` indexes.
        modules_to_save (`list[str]`, *optional*):
            Modules besides the adapters to train and save (e.g. a classification head).
    """

    r: int = field(default=8, metadata={"help": "Rank of each of the two LoRA branches."})
    scale: float = field(default=1.0, metadata={"help": "Multiplier s of the adapter output (lora_alpha / r)."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout probability of the branches."})
    dropout_position: Literal["output", "input"] = field(
        default="output", metadata={"help": "'output': per branch, as the official code; 'input': once, as LoRA."}
    )
    target_modules: list[str] | str | None = field(
        default=None, metadata={"help": "Names or regex of the nn.Linear / nn.Conv2d modules to adapt."}
    )
    single_branch_modules: list[str] | None = field(
        default=None, metadata={"help": "Modules with one plain LoRA branch that ignores the quality."}
    )
    exclude_modules: list[str] | str | None = field(default=None, metadata={"help": "Modules never to adapt."})
    quality_key: str = field(
        default="petal_quality", metadata={"help": "Forward keyword and dataset column that carries the quality."}
    )
    default_quality: float | None = field(
        default=None, metadata={"help": "Quality used when a call gives none; None makes a missing quality an error."}
    )
    clip_quality: bool = field(
        default=True, metadata={"help": "Clip the quality to [0, 1]; when off, values outside are an error."}
    )
    init_weights: bool = field(default=True, metadata={"help": "A ~ N(0, 1/r^2), B = 0 (identity at start)."})
    bias: Literal["none", "all", "petal_only"] = field(default="none", metadata={"help": "Which biases to train."})
    layers_to_transform: list[int] | int | None = field(
        default=None, metadata={"help": "Only adapt the layers with these indices."}
    )
    layers_pattern: list[str] | str | None = field(
        default=None, metadata={"help": "Name of the nn.ModuleList that layers_to_transform indexes."}
    )
    modules_to_save: list[str] | None = field(
        default=None, metadata={"help": "Modules besides the adapters to train and save."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = HfMarginPeftType.PETAL
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r < 1:
            raise ValueError(f"`r` must be an integer >= 1, got {self.r!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"`dropout` must lie in [0, 1), got {self.dropout}")
        if self.dropout_position not in ("output", "input"):
            raise ValueError(f"`dropout_position` must be 'output' or 'input', got {self.dropout_position!r}")
        if self.bias not in ("none", "all", "petal_only"):
            raise ValueError(f"`bias` must be 'none', 'all' or 'petal_only', got {self.bias!r}")
        if self.default_quality is not None and self.clip_quality is False and not 0 <= self.default_quality <= 1:
            raise ValueError(
                f"`default_quality` must lie in [0, 1] when clip_quality=False, got {self.default_quality}"
            )
        if self.target_modules is None and not self.single_branch_modules:
            raise ValueError(
                "`target_modules` must name the modules to adapt "
                "(e.g. ['query', 'value'] for BERT, ['q_proj', 'v_proj'] for ViT/CLIP/Swin in transformers 5)"
            )
        if isinstance(self.target_modules, list):
            self.target_modules = sorted(set(self.target_modules) | set(self.single_branch_modules or []))
        elif self.target_modules is None:
            self.target_modules = sorted(set(self.single_branch_modules or []))
        if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
            raise ValueError("`layers_to_transform` cannot be used when `target_modules` is a regex string")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ValueError("`layers_pattern` needs `layers_to_transform`")
