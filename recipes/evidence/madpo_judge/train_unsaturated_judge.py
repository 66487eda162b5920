"""Evidence recipe 2: MADPO against DPO, IPO and beta-DPO where the judge is not saturated, clean and 40% flipped
preference labels, paired by seed.

    python recipes/evidence/madpo_judge/train_unsaturated_judge.py recipes/evidence/madpo_judge/config.yaml
    hf-margin train evidence/madpo_judge -- --seeds 3

Protocol in hf_margin/demo/evidence/madpo_judge.py and recipes/evidence/README.md. Appends one record per
(labels, method, seed) to records.jsonl in --out_dir as it finishes (a restarted run skips the finished ones),
rewrites summary.json (means, 95% intervals, paired differences to DPO, and DPO's to the untrained policy) after
each, and prints the table at the end.
"""

import torch

from hf_margin.demo import recipe_main
from hf_margin.demo.evidence.madpo_judge import JudgeSetup, run

if __name__ == "__main__":
    torch.set_num_threads(1)  # a shared 2-core machine: one thread, and run it under `nice -n 19`
    recipe_main(JudgeSetup, run, "hf_margin_out/evidence/madpo_judge")
