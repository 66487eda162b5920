"""Recipe: Offline model-based optimisation on scikit-learn's diabetes data with a surrogate trained under IGNITE's
gradient-norm constraint (arXiv 2503.04242) vs the plain Trainer, designs scored by a held-back oracle.

    python recipes/offline_optimization/optimize_designs.py recipes/offline_optimization/config.yaml
    hf-margin train offline_optimization -- --seeds 16

The pipeline is hf_margin/demo/offline_optimization.py (`hf-margin demo --only offline_optimization`); config.yaml
holds its default budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.offline_optimization import OfflineOptimizationSetup, run

if __name__ == "__main__":
    recipe_main(OfflineOptimizationSetup, run, "hf_margin_out/offline_optimization")
