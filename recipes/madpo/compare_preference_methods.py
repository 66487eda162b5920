"""Recipe: MADPO against DPO, IPO and beta-DPO on SmolLM2-135M-Instruct with Rotten Tomatoes preference pairs,
at clean and corrupted data quality.

    python recipes/madpo/compare_preference_methods.py recipes/madpo/config.yaml

The pipeline (hf_margin/demo/madpo.py): fit a reward model and, on other movies, a judge (frozen MiniLM +
logistic regression, fresh vs rotten); score the pairs with the reward model (the margin column); train each
method's LoRA at the same budget; report the judge's mean P(fresh) of sampled generations for held-out movies.
Writes madpo.json (scores, timings, sample generations) to --out_dir.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.madpo import MADPOSetup, run

if __name__ == "__main__":
    recipe_main(MADPOSetup, run, "hf_margin_out/madpo")
