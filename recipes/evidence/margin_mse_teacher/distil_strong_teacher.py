"""Evidence recipe 5: Margin-MSE with a teacher stronger than the student, against labels only and pointwise MSE.

    python recipes/evidence/margin_mse_teacher/distil_strong_teacher.py recipes/evidence/margin_mse_teacher/config.yaml
    hf-margin train evidence/margin_mse_teacher -- --seeds 5

Protocol in hf_margin/demo/evidence/margin_mse_teacher.py and recipes/evidence/README.md. Step 1 trains the
cross-encoder teacher until it re-ranks held-out terms better than the zero-shot bi-encoder (regime.json, teacher/ in
--out_dir; checkpointed at every check, so a stopped run resumes). A teacher not ahead at its cap is tried as an
ensemble with the zero-shot bi-encoder (step 1b, `ensemble_fallback`); if that is not ahead either, the run stops
with a message. Step 2 appends one record per (student,
method, seed) to records.jsonl as it finishes (a restarted run skips the finished ones and reuses the teacher),
rewrites summary.json (means, 95% intervals, paired differences) after each, and prints the table at the end.
"""

import torch

from hf_margin.demo import recipe_main
from hf_margin.demo.evidence.margin_mse_teacher import StrongTeacherSetup, run

if __name__ == "__main__":
    torch.set_num_threads(1)  # a shared 2-core machine: one thread, and run it under `nice -n 19`
    recipe_main(StrongTeacherSetup, run, "hf_margin_out/evidence/margin_mse_teacher")
