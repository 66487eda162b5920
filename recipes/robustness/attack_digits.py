"""Recipe: The probability-margin attack (PMA, arXiv 2411.15210) against PGD on the cross-entropy, at the same
L-infinity radius and the same gradient budget, on a small CNN trained on scikit-learn's 8x8 digits.

    python recipes/robustness/attack_digits.py recipes/robustness/config.yaml
    hf-margin train robustness -- --steps 200

The pipeline is hf_margin/demo/robustness.py (`hf-margin demo --only robustness`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.robustness import RobustnessSetup, run

if __name__ == "__main__":
    recipe_main(RobustnessSetup, run, "hf_margin_out/robustness")
