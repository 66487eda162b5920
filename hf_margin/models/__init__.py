"""transformers models built on hf_margin's heads and losses (registered with the Auto classes at import)."""
