"""Recipe: the full margin-heads comparison, open-set face verification on the ORL faces.

    python recipes/margin_heads/verify_faces.py recipes/margin_heads/config.yaml
    python recipes/margin_heads/verify_faces.py --data_dir ../shared/data --folds 4 --seeds 3 --epochs 10

Same protocol as `hf-margin demo --only margin_heads` (see hf_margin/demo/margin_heads.py), with the full
budget: every held-out fold of 10 people, three seeds each. Without the ORL folder it falls back to sklearn's
digits. Writes margin_heads.json and margin_heads_roc.png to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.margin_heads import VerificationSetup, run

if __name__ == "__main__":
    recipe_main(VerificationSetup, run, "hf_margin_out/margin_heads")
