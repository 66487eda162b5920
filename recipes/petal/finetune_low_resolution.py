"""Recipe: PETALface in miniature, the full comparison.

    python recipes/petal/finetune_low_resolution.py recipes/petal/config.yaml

Pretrains a small ViT with ArcFace on the high-resolution images of 20 ORL people (cached), then fine-tunes it
on low-resolution copies of 10 others by full fine-tuning, LoRA and PETAL, and verifies the last 10 people
(HR-HR, LR-HR, LR-LR). Same code as `hf-margin demo --only petal` (hf_margin/demo/petal.py), more seeds.
Writes petal.json and petal.md (the table with trainable shares) to --out_dir.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.petal import PetalSetup, run

if __name__ == "__main__":
    recipe_main(PetalSetup, run, "hf_margin_out/petal")
