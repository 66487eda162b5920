"""MADPOTrainer against TRL's DPOTrainer: one training step's time (compute_loss, backward, AdamW) and peak
memory on the same Llama-style model, batch and data. MADPO adds a per-pair weight to the sigmoid loss, so the
target is under 3% overhead."""

from __future__ import annotations

import sys
import tempfile
from typing import Any

import torch

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

CASES = {
    "Llama 4x256, vocab 8k, batch 8 x 128 tokens": {
        "hidden_size": 256,
        "num_hidden_layers": 4,
        "vocab": 8000,
        "words": 60,
    },
}


def preference_setup(case: str, device: str) -> tuple[Any, Any, dict[str, list], dict[str, Any]]:
    """(Llama config, word-level tokenizer, 8 random preference rows with margins, common trainer options)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    spec = CASES[case]
    vocab = {f"w{i}": i for i in range(spec["vocab"])} | {"<pad>": spec["vocab"], "</s>": spec["vocab"] + 1}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<pad>"
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=spec["hidden_size"],
        intermediate_size=4 * spec["hidden_size"],
        num_hidden_layers=spec["num_hidden_layers"],
        num_attention_heads=4,
        num_key_value_heads=4,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
    )
    generator = torch.Generator().manual_seed(0)

    def text(n: int) -> str:
        return " ".join(f"w{i}" for i in torch.randint(0, spec["vocab"], (n,), generator=generator).tolist())

    rows = {
        "prompt": [text(32) for _ in range(8)],
        "chosen": [text(spec["words"]) for _ in range(8)],
        "rejected": [text(spec["words"]) for _ in range(8)],
        "margin": torch.randn(8, generator=generator).tolist(),
    }
    common = {
        "per_device_train_batch_size": 8,
        "bf16": False,
        "gradient_checkpointing": False,
        "report_to": [],
        "use_cpu": device == "cpu",
        "save_strategy": "no",
        "max_length": 128,
    }
    return config, tokenizer, rows, common


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    """One `training_step` of MADPO and of DPO (sigmoid) on identical models, references and batches."""
    from datasets import Dataset
    from transformers import LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    from hf_margin.trainers import MADPOConfig, MADPOTrainer

    config, tokenizer, rows, common = preference_setup(case, device)
    steps = []
    for trainer_cls, config_cls in ((MADPOTrainer, MADPOConfig), (DPOTrainer, DPOConfig)):
        torch.manual_seed(0)
        model, reference = LlamaForCausalLM(config), LlamaForCausalLM(config)
        data = Dataset.from_dict(
            rows if trainer_cls is MADPOTrainer else {k: v for k, v in rows.items() if k != "margin"}
        )
        trainer = trainer_cls(
            model,
            ref_model=reference,
            args=config_cls(tempfile.mkdtemp(), **common),
            train_dataset=data,
            processing_class=tokenizer,
        )
        batch = next(iter(trainer.get_train_dataloader()))
        optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=1e-5)

        def step(
            trainer: DPOTrainer = trainer, batch: dict = batch, optimizer: torch.optim.Optimizer = optimizer
        ) -> None:
            trainer.compute_loss(trainer.model, batch).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps.append(step)
    return steps[0], steps[1]


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    return [
        BenchRow(
            "MADPO training step",
            case,
            "TRL DPOTrainer (sigmoid)",
            *measure_case(__name__, case, make_steps, 5 if quick else 20, device),
        )
        for case in CASES
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
