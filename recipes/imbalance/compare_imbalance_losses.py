"""Recipe: catalogue I's imbalance- and noise-robust losses against cross-entropy at the same budget, on an
imbalanced text task (Rotten Tomatoes 1:20, frozen MiniLM features, linear head) or a long-tailed image task
(digits, imbalance ratio 100, small CNN), with 20% and 40% symmetric label noise for the noise-robust losses.

    python recipes/imbalance/compare_imbalance_losses.py recipes/imbalance/config_text.yaml
    python recipes/imbalance/compare_imbalance_losses.py recipes/imbalance/config_images.yaml
    accelerate launch recipes/imbalance/compare_imbalance_losses.py recipes/imbalance/config_text.yaml

The pipeline is hf_margin/demo/imbalance.py (every method through ClassificationLossTrainer). Writes
imbalance_<task>.json (metrics, class counts, timings) and imbalance_<task>.png.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.imbalance import ImbalanceSetup, run

if __name__ == "__main__":
    recipe_main(ImbalanceSetup, run, "hf_margin_out/imbalance")
