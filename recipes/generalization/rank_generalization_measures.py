"""Recipe: Do Jiang et al.'s margin-based generalization measures rank small digits models by their gap?

    python recipes/generalization/rank_generalization_measures.py recipes/generalization/config.yaml
    hf-margin train generalization -- --steps 600

The pipeline is hf_margin/demo/generalization.py (`hf-margin demo --only generalization`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.generalization import GeneralizationSetup, run

if __name__ == "__main__":
    recipe_main(GeneralizationSetup, run, "hf_margin_out/generalization")
