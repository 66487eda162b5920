"""hf_margin: margin-based training objectives from recent papers for the Hugging Face stack.

`import hf_margin` is cheap: it imports neither torch nor transformers. The names below load on first use
(PEP 562), and the integrations register themselves with their host library as soon as both are imported,
whichever comes first (post-import hooks):

- with transformers: `MarginHeadModel` and `TransICDModel` join the Auto classes, so ``AutoModel.from_pretrained``
  loads a saved one;
- with peft: PETAL joins peft's mappings, so `get_peft_model`, `PeftModel.from_pretrained` and the `AutoPeftModel*`
  classes handle ``"peft_type": "PETAL"``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

import wrapt

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from hf_margin.heads import (
        AdaFaceHead,
        ArcFaceHead,
        CombinedMarginHead,
        CosFaceHead,
        ElasticArcFaceHead,
        ElasticCosFaceHead,
        HypersphericalHead,
        MarginHead,
        SoftmaxHead,
    )
    from hf_margin.models.margin_head import MarginHeadConfig, MarginHeadModel, MarginHeadOutput
    from hf_margin.models.transicd import TransICDConfig, TransICDModel, TransICDOutput
    from hf_margin.tuners.petal import PetalConfig, PetalModel

_LAZY_NAMES = {
    "hf_margin.heads": (
        "AdaFaceHead",
        "ArcFaceHead",
        "CombinedMarginHead",
        "CosFaceHead",
        "ElasticArcFaceHead",
        "ElasticCosFaceHead",
        "HypersphericalHead",
        "MarginHead",
        "SoftmaxHead",
    ),
    "hf_margin.models.margin_head": ("MarginHeadConfig", "MarginHeadModel", "MarginHeadOutput"),
    "hf_margin.models.transicd": ("TransICDConfig", "TransICDModel", "TransICDOutput"),
    "hf_margin.tuners.petal": ("PetalConfig", "PetalModel"),
}
_MODULE_OF = {name: module for module, names in _LAZY_NAMES.items() for name in names}
# What each host library must know about once it is imported (the import registers it).
_REGISTERED_WITH = {
    "transformers": ("hf_margin.models.margin_head", "hf_margin.models.transicd"),
    "peft": ("hf_margin.tuners.petal",),
}

__all__ = [
    "AdaFaceHead",
    "ArcFaceHead",
    "CombinedMarginHead",
    "CosFaceHead",
    "ElasticArcFaceHead",
    "ElasticCosFaceHead",
    "HypersphericalHead",
    "MarginHead",
    "MarginHeadConfig",
    "MarginHeadModel",
    "MarginHeadOutput",
    "PetalConfig",
    "PetalModel",
    "SoftmaxHead",
    "TransICDConfig",
    "TransICDModel",
    "TransICDOutput",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'hf_margin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def _register_with(host: str) -> None:
    def register(_host_module: object) -> None:
        for module in _REGISTERED_WITH[host]:
            try:
                importlib.import_module(module)
            except Exception as error:  # a broken integration must not break the user's `import {host}`
                warnings.warn(f"hf_margin could not register {module} with {host}: {error}", stacklevel=2)

    wrapt.register_post_import_hook(register, host)


for _host in _REGISTERED_WITH:
    _register_with(_host)
