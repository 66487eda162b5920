"""Trainer callbacks."""

from hf_margin.callbacks.drw import DRWCallback
from hf_margin.callbacks.embedding_geometry import EmbeddingGeometryCallback
from hf_margin.callbacks.generalization import GeneralizationMeasuresCallback
from hf_margin.callbacks.gradient_entanglement import GradientEntanglementCallback
from hf_margin.callbacks.hyperspherical_projection import HypersphericalProjectionCallback
from hf_margin.callbacks.loss_generator import LossGeneratorCallback, checkpoint_loss_generator
from hf_margin.callbacks.loss_statistics import LossStatisticsCallback, log_loss_statistics

__all__ = [
    "DRWCallback",
    "EmbeddingGeometryCallback",
    "GeneralizationMeasuresCallback",
    "GradientEntanglementCallback",
    "HypersphericalProjectionCallback",
    "LossGeneratorCallback",
    "LossStatisticsCallback",
    "checkpoint_loss_generator",
    "log_loss_statistics",
]
