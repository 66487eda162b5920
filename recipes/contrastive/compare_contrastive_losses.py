"""Recipe: The contrastive temperature (Wang & Liu, arXiv 2012.09740) and UNPG (arXiv 2203.11593) on digits.

    python recipes/contrastive/compare_contrastive_losses.py recipes/contrastive/config.yaml
    hf-margin train contrastive -- --steps 400

The pipeline is hf_margin/demo/contrastive.py (`hf-margin demo --only contrastive`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.contrastive import ContrastiveSetup, run

if __name__ == "__main__":
    recipe_main(ContrastiveSetup, run, "hf_margin_out/contrastive")
