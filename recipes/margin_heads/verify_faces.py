"""Recipe: the full margin-heads comparison, open-set face verification on the ORL faces.

    python recipes/margin_heads/verify_faces.py recipes/margin_heads/config.yaml
    python recipes/margin_heads/verify_faces.py --data_dir ../shared/data --folds 4 --seeds 3 --epochs 10

Same protocol as `hf-margin demo --only margin_heads` (see hf_margin/demo/margin_heads.py), with the full
budget: every held-out fold of 10 people, three seeds each. Without the ORL folder it falls back to sklearn's
digits. Writes margin_heads.json, margin_heads_roc.png and results.json/png to --out_dir and prints the table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from hf_margin.demo import DemoContext, format_table
from hf_margin.demo.margin_heads import VerificationSetup, run


@dataclass
class RecipeArguments:
    data_dir: str | None = field(default=None, metadata={"help": "folder holding att_faces/ (or $HF_MARGIN_DATA)"})
    out_dir: str = field(default="hf_margin_out/margin_heads", metadata={"help": "where results and plots go"})


def main() -> None:
    parser = HfArgumentParser((VerificationSetup, RecipeArguments))
    if len(sys.argv) == 2 and sys.argv[1].endswith((".yaml", ".yml")):
        setup, recipe = parser.parse_yaml_file(sys.argv[1])
    else:
        setup, recipe = parser.parse_args_into_dataclasses()
    context = DemoContext(out_dir=Path(recipe.out_dir), data_dir=Path(recipe.data_dir) if recipe.data_dir else None)
    context.out_dir.mkdir(parents=True, exist_ok=True)
    rows = run(context, setup)
    print(format_table(rows))
    print(f"\nwrote {context.out_dir / 'margin_heads.json'} and {context.out_dir / 'margin_heads_roc.png'}")


if __name__ == "__main__":
    main()
