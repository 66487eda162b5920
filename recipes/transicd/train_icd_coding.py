"""Recipe: TransICD (code-wise attention + LDAM) against code-wise attention with BCE and mean pooling with BCE
on multi-label ICD-10-CM pseudo-notes, in the paper's table shape (micro/macro AUC, micro/macro F1, P@5).

    python recipes/transicd/train_icd_coding.py recipes/transicd/config.yaml          # the paper's own encoder
    python recipes/transicd/train_icd_coding.py recipes/transicd/config_minilm.yaml   # all-MiniLM-L6-v2
    accelerate launch recipes/transicd/train_icd_coding.py recipes/transicd/config.yaml

The corpus (hf_margin/demo/data/icd_notes.py): 50 randomly drawn 3-character categories, notes of 1-4 labelled and
0-2 unlabelled snippets of real ICD-10-CM wording, picked in proportion to each category's snippet count (a
43x spread of training counts); test notes use snippets never trained on. Writes transicd.json to --out_dir.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.transicd import TransICDSetup, run

if __name__ == "__main__":
    recipe_main(TransICDSetup, run, "hf_margin_out/transicd")
