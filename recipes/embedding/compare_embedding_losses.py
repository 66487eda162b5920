"""Recipe: fine-tune all-MiniLM-L6-v2 for ICD-10-CM term -> description retrieval with MarginEmbeddingLoss
(each part switched on in turn, then all) against MNRL, MNRL with hard negatives and GISTEmbedLoss.

    python recipes/embedding/compare_embedding_losses.py recipes/embedding/config.yaml
    accelerate launch recipes/embedding/compare_embedding_losses.py recipes/embedding/config.yaml

The pipeline (hf_margin/demo/embedding.py): split ICD-10-CM by code, mine hard negatives for the training terms
with the zero-shot model (KaLM's rank window and consistency filter), score them with it (soft labels), train
every method at the same budget on the same rows, then report R@1, R@10 and nDCG@10 on the held-out codes and on
chatterbot-corpus question -> answer retrieval (never trained on). Writes embedding.json (metrics, timings,
training logs with the logged filter share, focal weight and similarity gap) and embedding_ablation.png.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.embedding import EmbeddingSetup, run

if __name__ == "__main__":
    recipe_main(EmbeddingSetup, run, "hf_margin_out/embedding")
