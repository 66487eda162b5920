"""Loaders for the real data sets that demos, recipes and benchmarks use (research harness, not library code).
Loaders take a path; nothing is downloaded."""
