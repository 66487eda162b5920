"""Recipe: novel people added from k shots by imprinting on a hyperspherical head vs a retrained softmax.

    python recipes/hyperspherical/novel_classes.py recipes/hyperspherical/config.yaml
    hf-margin train hyperspherical -- --seeds 10

The pipeline is hf_margin/demo/hyperspherical.py (`hf-margin demo --only hyperspherical`); config.yaml holds its
default budget. The ORL faces are not shipped: put the AT&T face database's att_faces/ under data_dir (or set
$HF_MARGIN_DATA); with `--data_dir null` and $HF_MARGIN_DATA unset, sklearn's digits stand in. Writes its results to
--out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.hyperspherical import NovelClassSetup, run

if __name__ == "__main__":
    recipe_main(NovelClassSetup, run, "hf_margin_out/hyperspherical")
