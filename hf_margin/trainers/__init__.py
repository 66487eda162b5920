"""Trainers (transformers / TRL subclasses). Trainers that need an optional extra are imported on first use."""

from hf_margin.trainers.petal_trainer import PetalColumnsMixin, PetalTrainer, quality_keys

__all__ = ["PetalColumnsMixin", "PetalTrainer", "quality_keys"]
