"""Diagnostics: measurements around margins that do not change training."""
