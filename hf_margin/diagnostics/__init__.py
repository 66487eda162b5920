"""Diagnostics: measurements around margins that do not change training, and ModHiFi's subset fidelity."""

from hf_margin.diagnostics.generalization import (
    generalization_measures,
    margin_percentile,
    output_margins,
    path_norm,
    weight_matrices,
)
from hf_margin.diagnostics.modhifi import LayerFidelity, layer_fidelity, modhifi_prune, modhifi_unlearn

__all__ = [
    "LayerFidelity",
    "generalization_measures",
    "layer_fidelity",
    "margin_percentile",
    "modhifi_prune",
    "modhifi_unlearn",
    "output_margins",
    "path_norm",
    "weight_matrices",
]
