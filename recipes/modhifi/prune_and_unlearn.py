"""Recipe: ModHiFi pruning (vs structured magnitude pruning) and unlearning of one digit, digits MLPs, no fine-tuning.

    python recipes/modhifi/prune_and_unlearn.py recipes/modhifi/config.yaml
    hf-margin train modhifi -- --unlearn_layer 2 --unlearn_fraction 0.1

The pipeline is hf_margin/demo/modhifi.py (`hf-margin demo --only modhifi`); config.yaml holds its default budget.
Writes modhifi.json and modhifi.png (accuracy vs sparsity; forgotten vs other digits) to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.modhifi import ModHiFiSetup, run

if __name__ == "__main__":
    recipe_main(ModHiFiSetup, run, "hf_margin_out/modhifi")
