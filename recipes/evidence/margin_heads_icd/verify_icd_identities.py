"""Evidence recipe 1: the margin heads with many identities (ICD-10-CM categories), paired by seed.

    python recipes/evidence/margin_heads_icd/verify_icd_identities.py recipes/evidence/margin_heads_icd/config.yaml
    hf-margin train evidence/margin_heads_icd -- --seeds 3 --identities 100 500

Protocol in hf_margin/demo/evidence/margin_heads_icd.py and recipes/evidence/README.md. Appends one record per
(head, identities, seed) to records.jsonl in --out_dir as it finishes (a restarted run skips the finished ones),
rewrites summary.json (means, 95% intervals, paired differences) after each, and prints the table at the end.
"""

import torch

from hf_margin.demo import recipe_main
from hf_margin.demo.evidence.margin_heads_icd import ManyIdentitiesSetup, run

if __name__ == "__main__":
    torch.set_num_threads(1)  # a shared 2-core machine: one thread, and run it under `nice -n 19`
    recipe_main(ManyIdentitiesSetup, run, "hf_margin_out/evidence/margin_heads_icd")
