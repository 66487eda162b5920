"""The cost of the gradient-entanglement diagnostic: wall time and peak memory of 10 MADPO training steps with
`GradientEntanglementCallback` measuring every 10 steps, against the same 10 steps without it (same model,
data and seed). The target is under 15% overhead."""

from __future__ import annotations

import sys
import tempfile

import torch

from benchmarks._harness import BenchRow, Step, measure_case, memory_main
from benchmarks.bench_madpo import CASES, preference_setup

STEPS = 10


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    from datasets import Dataset
    from transformers import LlamaForCausalLM

    from hf_margin.callbacks import GradientEntanglementCallback
    from hf_margin.trainers import MADPOConfig, MADPOTrainer

    config, tokenizer, rows, common = preference_setup(case, device)
    runs = []
    for watched in (True, False):
        torch.manual_seed(0)
        options = common | {"max_steps": STEPS, "disable_tqdm": True}
        trainer = MADPOTrainer(
            LlamaForCausalLM(config),
            ref_model=LlamaForCausalLM(config),
            args=MADPOConfig(tempfile.mkdtemp(), **options),
            train_dataset=Dataset.from_dict(rows),
            processing_class=tokenizer,
        )
        if watched:
            trainer.add_callback(GradientEntanglementCallback(trainer, every_n_steps=STEPS))
        runs.append(trainer.train)
    return (lambda: runs[0]() and None), (lambda: runs[1]() and None)


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    return [
        BenchRow(
            f"gradient entanglement every {STEPS} steps ({STEPS} MADPO steps)",
            case,
            "same training without it",
            *measure_case(__name__, case, make_steps, 2 if quick else 5, device),
        )
        for case in CASES
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
