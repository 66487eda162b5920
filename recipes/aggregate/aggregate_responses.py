"""Recipe: A linear model learnt from aggregate responses only, with the bag-level, instance-level and interpolating
losses (Javanmard et al., arXiv 2401.11081), on scikit-learn's diabetes regression data.

    python recipes/aggregate/aggregate_responses.py recipes/aggregate/config.yaml
    hf-margin train aggregate -- --iterations 200

The pipeline is hf_margin/demo/aggregate.py (`hf-margin demo --only aggregate`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.aggregate import AggregateSetup, run

if __name__ == "__main__":
    recipe_main(AggregateSetup, run, "hf_margin_out/aggregate")
