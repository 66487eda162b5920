"""Evidence recipe 4: TransICD with LDAM (and DRW) against BCE on a long tail of rare labels, paired by seed.

    python recipes/evidence/transicd_rare/train_rare_labels.py recipes/evidence/transicd_rare/config.yaml
    hf-margin train evidence/transicd_rare -- --seeds 3

Protocol in hf_margin/demo/evidence/transicd_rare.py and recipes/evidence/README.md. Appends one record per
(method, seed) to records.jsonl in --out_dir as it finishes (a restarted run skips the finished ones), rewrites
summary.json (means, 95% intervals, paired differences to BCE) after each, and prints the table at the end.
"""

import torch

from hf_margin.demo import recipe_main
from hf_margin.demo.evidence.transicd_rare import RareLabelsSetup, run

if __name__ == "__main__":
    torch.set_num_threads(1)  # a shared 2-core machine: one thread, and run it under `nice -n 19`
    recipe_main(RareLabelsSetup, run, "hf_margin_out/evidence/transicd_rare")
