"""Trainers (transformers / TRL subclasses). Those that need the `trl` extra are imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from hf_margin.trainers.classification_loss_trainer import ClassificationLossArguments, ClassificationLossTrainer
from hf_margin.trainers.ignite import IGNITEConfig, IGNITETrainer
from hf_margin.trainers.margin_mse_config import MarginMSETrainingArguments
from hf_margin.trainers.margin_mse_trainer import MarginMSECollator, MarginMSETrainer, RerankingSet
from hf_margin.trainers.margin_preserving_config import MarginPreservingConfig
from hf_margin.trainers.margin_preserving_trainer import MarginPreservingTrainer
from hf_margin.trainers.petal_trainer import PetalColumnsMixin, PetalTrainer, quality_keys
from hf_margin.trainers.robust_self_training import RobustSelfTrainer, RobustSelfTrainingConfig
from hf_margin.trainers.self_training import RoundRecord, SelfTrainingConfig, SelfTrainingLoop, SelfTrainingResult

_LAZY = {
    "BetaDPOConfig": "hf_margin.trainers.beta_dpo",
    "BetaDPOTrainer": "hf_margin.trainers.beta_dpo",
    "MADPOConfig": "hf_margin.trainers.madpo_config",
    "MADPOTrainer": "hf_margin.trainers.madpo_trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_margin.trainers' has no attribute {name!r}")


__all__ = [
    "BetaDPOConfig",
    "BetaDPOTrainer",
    "ClassificationLossArguments",
    "ClassificationLossTrainer",
    "IGNITEConfig",
    "IGNITETrainer",
    "MADPOConfig",
    "MADPOTrainer",
    "MarginMSECollator",
    "MarginMSETrainer",
    "MarginMSETrainingArguments",
    "MarginPreservingConfig",
    "MarginPreservingTrainer",
    "PetalColumnsMixin",
    "PetalTrainer",
    "RerankingSet",
    "RobustSelfTrainer",
    "RobustSelfTrainingConfig",
    "RoundRecord",
    "SelfTrainingConfig",
    "SelfTrainingLoop",
    "SelfTrainingResult",
    "quality_keys",
]
