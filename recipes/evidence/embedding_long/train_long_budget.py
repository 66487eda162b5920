"""Evidence recipe 3: MarginEmbeddingLoss's parts, one at a time and together, against MNRL with the same mined hard
negatives at a longer budget (1,000 steps of 64 rows, GradCache), paired by seed.

    python recipes/evidence/embedding_long/train_long_budget.py recipes/evidence/embedding_long/config.yaml
    hf-margin train evidence/embedding_long -- --seeds 3

Protocol in hf_margin/demo/evidence/embedding_long.py and recipes/evidence/README.md. Appends one record per
(method, seed) to records.jsonl in --out_dir as it finishes (a restarted run skips the finished ones), rewrites
summary.json (means, 95% intervals, paired differences to MNRL + hard negatives) after each, draws
paired_differences.png and prints the table at the end.
"""

import torch

from hf_margin.demo import recipe_main
from hf_margin.demo.evidence.embedding_long import LongBudgetSetup, run

if __name__ == "__main__":
    torch.set_num_threads(1)  # a shared 2-core machine: one thread, and run it under `nice -n 19`
    recipe_main(LongBudgetSetup, run, "hf_margin_out/evidence/embedding_long")
