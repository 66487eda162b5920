"""Recipe: Dataset condensation with contrastive signals (DCC, arXiv 2202.02916) vs class-wise gradient matching (DC,
arXiv 2006.05929) vs random real images, on scikit-learn's 8x8 digits.

    python recipes/condensation/condense_digits.py recipes/condensation/config.yaml
    hf-margin train condensation -- --outer_loop 32

The pipeline is hf_margin/demo/condensation.py (`hf-margin demo --only condensation`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.condensation import CondensationSetup, run

if __name__ == "__main__":
    recipe_main(CondensationSetup, run, "hf_margin_out/condensation")
