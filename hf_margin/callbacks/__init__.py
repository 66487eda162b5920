"""Trainer callbacks."""

from hf_margin.callbacks.gradient_entanglement import GradientEntanglementCallback
from hf_margin.callbacks.loss_statistics import LossStatisticsCallback, log_loss_statistics

__all__ = ["GradientEntanglementCallback", "LossStatisticsCallback", "log_loss_statistics"]
