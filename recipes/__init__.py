"""Recipes and accelerate configs (package data: shipped in the wheel as `hf_margin.recipes`)."""
