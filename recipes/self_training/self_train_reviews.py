"""Recipe: Self-training with margin thresholds (Self-Training: A Survey, arXiv 2202.12040) against the labelled-only
baseline.

    python recipes/self_training/self_train_reviews.py recipes/self_training/config.yaml
    hf-margin train self_training -- --labels_per_class 80

The pipeline is hf_margin/demo/self_training.py (`hf-margin demo --only self_training`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.self_training import SelfTrainingSetup, run

if __name__ == "__main__":
    recipe_main(SelfTrainingSetup, run, "hf_margin_out/self_training")
