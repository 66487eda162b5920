"""Trainer callbacks."""

from hf_margin.callbacks.gradient_entanglement import GradientEntanglementCallback

__all__ = ["GradientEntanglementCallback"]
