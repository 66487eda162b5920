"""Recipe: TransICD over every ICD-10-CM 3-character category (1,815 labels) next to the 50-label run, with the
time per training step and the peak memory of each, on ICD-10-CM pseudo-notes.

    python recipes/transicd/train_full_categories.py recipes/transicd/config_full_categories.yaml
    python recipes/transicd/train_full_categories.py recipes/transicd/config_full_categories.yaml \\
        --steps 5 --train_notes 200 --test_notes 100                      # tiny: the cost figures only

Each run is `train_icd_coding.py` with the same config and words, in its own process (so that one run's memory does
not hide the other's peak); the 50-label run draws its categories as config.yaml does (`--num_labels 50
--min_snippets 10`). Writes <out_dir>/labels_50 and <out_dir>/labels_all (transicd.json each) and prints, per run and
method: labels, seconds per step, peak MiB added by training, micro-F1 and P@5.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hf_margin.demo import parse_recipe_arguments
from hf_margin.demo.transicd import TransICDSetup

RUNS = {"labels_50": ["--num_labels", "50", "--min_snippets", "10"], "labels_all": []}


def main(argv: list[str]) -> None:
    try:
        _, paths = parse_recipe_arguments(TransICDSetup, "hf_margin_out/transicd_full_categories", argv)
    except ValueError as error:
        raise SystemExit(f"train_full_categories.py: error: {error}") from None
    if "--out_dir" in argv:  # each run gets its own folder below it
        at = argv.index("--out_dir")
        argv = argv[:at] + argv[at + 2 :]
    lines = ["| labels | method | s / step | peak MiB | micro-F1 | P@5 |", "|---|---|---|---|---|---|"]
    for name, words in RUNS.items():
        out_dir = Path(paths.out_dir) / name
        script = Path(__file__).with_name("train_icd_coding.py")
        subprocess.run([sys.executable, str(script), *argv, *words, "--out_dir", str(out_dir)], check=True)
        report = json.loads((out_dir / "transicd.json").read_text())
        for method, cost in report["training_cost"].items():
            metrics = report["results"][method]
            lines.append(
                f"| {len(report['label_counts'])} | {method} | {cost['seconds_per_step']:.3f} | {cost['peak_mib']:.0f} "
                f"| {metrics['micro_f1']:.3f} | {metrics['precision_at_5']:.3f} |"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
