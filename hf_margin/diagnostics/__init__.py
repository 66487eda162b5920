"""Diagnostics: measurements around margins that do not change training."""

from hf_margin.diagnostics.generalization import (
    generalization_measures,
    margin_percentile,
    output_margins,
    path_norm,
    weight_matrices,
)

__all__ = ["generalization_measures", "margin_percentile", "output_margins", "path_norm", "weight_matrices"]
