"""PEFT methods (need the `peft` extra). Importing `hf_margin` registers them with peft when peft is installed."""
