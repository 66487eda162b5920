"""PETAL: quality-gated dual LoRA (PETALface, arXiv 2412.07771) as a PEFT method.

Importing this package registers PETAL with peft, so `get_peft_model`, `PeftModel.from_pretrained`,
`PeftConfig.from_pretrained` and the `AutoPeftModel*` classes handle ``"peft_type": "PETAL"``. peft's own
`register_peft_method` only accepts names already in its closed `PeftType` enum, so the three mappings it
would fill are filled here with a str-Enum member (see `HfMarginPeftType`).
"""

from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_PREFIX_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING

from hf_margin._compat import check_host_versions
from hf_margin.tuners.petal.config import HfMarginPeftType, PetalConfig
from hf_margin.tuners.petal.layer import PetalConv2d, PetalLayer, PetalLinear
from hf_margin.tuners.petal.model import PetalModel, prepare_quality
from hf_margin.tuners.petal.model_card import petal_card_values

check_host_versions("peft", "transformers")


def register() -> None:
    """Make peft know PETAL (idempotent)."""
    PEFT_TYPE_TO_CONFIG_MAPPING[HfMarginPeftType.PETAL] = PetalConfig  # type: ignore[index]
    PEFT_TYPE_TO_TUNER_MAPPING[HfMarginPeftType.PETAL] = PetalModel  # type: ignore[index]
    PEFT_TYPE_TO_PREFIX_MAPPING[HfMarginPeftType.PETAL] = PetalModel.prefix  # type: ignore[index]


register()

__all__ = [
    "HfMarginPeftType",
    "PetalConfig",
    "PetalConv2d",
    "PetalLayer",
    "PetalLinear",
    "PetalModel",
    "petal_card_values",
    "prepare_quality",
    "register",
]
