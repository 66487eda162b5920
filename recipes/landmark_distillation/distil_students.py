"""Recipe: A small regression student distilled with KD-Loss from a Tough and a Tolerant teacher (Fard & Mahoor, arXiv
2111.07047) against the same student alone and with plain KD, on the next weeks of the Mauna Loa CO2 record.

    python recipes/landmark_distillation/distil_students.py recipes/landmark_distillation/config.yaml
    hf-margin train landmark_distillation -- --seeds 10

The pipeline is hf_margin/demo/landmark_distillation.py (`hf-margin demo --only landmark_distillation` once it is
registered); config.yaml holds its default budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.landmark_distillation import LandmarkDistillationSetup, run

if __name__ == "__main__":
    recipe_main(LandmarkDistillationSetup, run, "hf_margin_out/landmark_distillation")
