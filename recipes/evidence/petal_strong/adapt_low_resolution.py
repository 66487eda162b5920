"""Evidence recipe 6: PETAL against full fine-tuning and LoRA on a strong backbone, adapted to low resolution.

    python recipes/evidence/petal_strong/adapt_low_resolution.py recipes/evidence/petal_strong/config.yaml
    hf-margin train evidence/petal_strong -- --seeds 3

Protocol in hf_margin/demo/evidence/petal_strong.py and recipes/evidence/README.md. Appends one record per
(method, seed) to records.jsonl in --out_dir as it finishes (a restarted run skips the finished ones), rewrites
summary.json (means, 95% intervals, paired differences to full fine-tuning, LoRA and the start model) after each, and
prints the table at the end.
"""

import torch

from hf_margin.demo import recipe_main
from hf_margin.demo.evidence.petal_strong import StrongBackboneSetup, run

if __name__ == "__main__":
    torch.set_num_threads(1)  # a shared 2-core machine: one thread, and run it under `nice -n 19`
    recipe_main(StrongBackboneSetup, run, "hf_margin_out/evidence/petal_strong")
