"""Recipe: Few-shot classification of unseen people with Proto-Triplet and ICNN added to ProtoNet.

    python recipes/few_shot/few_shot_episodes.py recipes/few_shot/config.yaml
    hf-margin train few_shot -- --ways 10

The pipeline is hf_margin/demo/few_shot.py (`hf-margin demo --only few_shot`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.few_shot import FewShotSetup, run

if __name__ == "__main__":
    recipe_main(FewShotSetup, run, "hf_margin_out/few_shot")
