"""Recipe: Distillation demo on sklearn's 8x8 digits (real data, offline): a model update with fewer negative flips
(MPT) and Dual-Head KD vs standard KD vs cross-entropy for a small student.

    python recipes/distillation/compare_distillation.py recipes/distillation/config.yaml
    hf-margin train distillation -- --old_classes 10

The pipeline is hf_margin/demo/distillation.py (`hf-margin demo --only distillation`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.distillation import DistillationSetup, run

if __name__ == "__main__":
    recipe_main(DistillationSetup, run, "hf_margin_out/distillation")
