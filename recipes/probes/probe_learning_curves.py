"""Recipe: The shared-variance naive Bayes probe against logistic regression on frozen features, by shots.

    python recipes/probes/probe_learning_curves.py recipes/probes/config.yaml
    hf-margin train probes -- --text_rows 2000

The pipeline is hf_margin/demo/probes.py (`hf-margin demo --only probes`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.probes import ProbesSetup, run

if __name__ == "__main__":
    recipe_main(ProbesSetup, run, "hf_margin_out/probes")
