"""Recipe: DRM (`DomainSpecificHeads`, arXiv 2208.08661) against a single head (ERM), leave-one-domain-out.

    python recipes/drm/leave_one_domain_out.py recipes/drm/config.yaml
    hf-margin train drm -- --per_class 120

The pipeline is hf_margin/demo/drm.py (`hf-margin demo --only drm`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.drm import DRMSetup, run

if __name__ == "__main__":
    recipe_main(DRMSetup, run, "hf_margin_out/drm")
