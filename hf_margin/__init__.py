"""hf_margin: margin-based training objectives from recent papers for the Hugging Face stack.

Importing the package needs torch and transformers only. Pieces that integrate with optional libraries
(peft, trl, sentence-transformers) import them lazily and name the extra to install when it is missing.
"""

from __future__ import annotations

import importlib.util

__version__ = "0.1.0.dev0"

from hf_margin.heads import (
    AdaFaceHead,
    ArcFaceHead,
    CombinedMarginHead,
    CosFaceHead,
    ElasticArcFaceHead,
    ElasticCosFaceHead,
    MarginHead,
    SoftmaxHead,
)
from hf_margin.models.margin_head import MarginHeadConfig, MarginHeadModel, MarginHeadOutput
from hf_margin.models.transicd import TransICDConfig, TransICDModel, TransICDOutput

if importlib.util.find_spec("peft") is not None:
    # Registers PETAL with peft, so get_peft_model / PeftModel.from_pretrained know it after `import hf_margin`.
    from hf_margin.tuners.petal import PetalConfig, PetalModel  # noqa: F401

__all__ = [
    "AdaFaceHead",
    "ArcFaceHead",
    "CombinedMarginHead",
    "CosFaceHead",
    "ElasticArcFaceHead",
    "ElasticCosFaceHead",
    "MarginHead",
    "MarginHeadConfig",
    "MarginHeadModel",
    "MarginHeadOutput",
    "SoftmaxHead",
    "TransICDConfig",
    "TransICDModel",
    "TransICDOutput",
    "__version__",
]
