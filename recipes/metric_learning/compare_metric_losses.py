"""Recipe: Open-set retrieval with Multi-Similarity (+ miner) and MS + TCM against PML's losses.

    python recipes/metric_learning/compare_metric_losses.py recipes/metric_learning/config.yaml
    hf-margin train metric_learning -- --max_images_per_identity 80

The pipeline is hf_margin/demo/metric_learning.py (`hf-margin demo --only metric_learning`); config.yaml holds its
default budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.metric_learning import MetricLearningSetup, run

if __name__ == "__main__":
    recipe_main(MetricLearningSetup, run, "hf_margin_out/metric_learning")
