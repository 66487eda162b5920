"""Loaders for the real data sets that demos, recipes and benchmarks use. Loaders take a path; nothing is
downloaded."""
