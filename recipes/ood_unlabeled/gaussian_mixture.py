"""Recipe: RSS, robust self-training with out-of-domain unlabelled data ("Out-Of-Domain Unlabeled Data Improves
Generalization", arXiv 2310.00027), on the poster's Gaussian mixture against ERM on the labelled rows.

    python recipes/ood_unlabeled/gaussian_mixture.py recipes/ood_unlabeled/config.yaml
    hf-margin train ood_unlabeled -- --seeds 10

The pipeline is hf_margin/demo/ood_unlabeled.py (`hf-margin demo --only ood_unlabeled`); config.yaml holds its
default budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.ood_unlabeled import OODUnlabeledSetup, run

if __name__ == "__main__":
    recipe_main(OODUnlabeledSetup, run, "hf_margin_out/ood_unlabeled")
