"""Recipe: distil MiniLM cross-encoder teachers into MiniLM bi-encoder students with Margin-MSE, against the same
students trained on labels only and with pointwise MSE distillation, on ICD-10-CM term -> description ranking.

    python recipes/margin_mse/distil_ranker.py recipes/margin_mse/config.yaml
    accelerate launch recipes/margin_mse/distil_ranker.py recipes/margin_mse/config.yaml

The pipeline (hf_margin/demo/margin_mse.py): split ICD-10-CM by code, mine hard negatives with the zero-shot
bi-encoder, fine-tune differently seeded cross-encoder teachers (cached), score every training row with their
mean (the paper's T2), train every student x method at the same budget on the same rows, then report re-ranking
and retrieval MRR@10 / nDCG@10 on the held-out codes and each student's re-ranking speed-up over one teacher.
Writes margin_mse.json (metrics, timings, speed-ups).
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.margin_mse import DistillationSetup, run

if __name__ == "__main__":
    recipe_main(DistillationSetup, run, "hf_margin_out/margin_mse")
