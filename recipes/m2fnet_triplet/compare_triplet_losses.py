"""Recipe: M2FNet's adaptive-margin triplet loss (default and printed form) vs the plain triplet loss, open-set
face retrieval.

    python recipes/m2fnet_triplet/compare_triplet_losses.py recipes/m2fnet_triplet/config.yaml
    hf-margin train m2fnet_triplet -- --seeds 5

The pipeline is hf_margin/demo/m2fnet_triplet.py (`hf-margin demo --only m2fnet_triplet`); config.yaml holds its
default budget. The ORL faces are not shipped: put the AT&T face database's att_faces/ under data_dir (or set
$HF_MARGIN_DATA); with `--data_dir null` and $HF_MARGIN_DATA unset, sklearn's digits stand in. Writes its results to
--out_dir (m2fnet_triplet.json: per seed, mean and std) and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.m2fnet_triplet import M2FNetSetup, run

if __name__ == "__main__":
    recipe_main(M2FNetSetup, run, "hf_margin_out/m2fnet_triplet")
