"""PETAL against PEFT LoRA of rank 2r (the same number of adapter parameters per layer) on the same ViT and
batch: forward + backward time and peak memory. PETAL computes its two rank-r branches as one rank-2r pair
plus a per-sample gate, so the target is within 10% of LoRA."""

from __future__ import annotations

import sys

import torch

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

RANK, BATCH = 8, 32
CASES = {
    "ViT-S/16 224px (6 layers)": {
        "hidden_size": 384,
        "num_hidden_layers": 6,
        "num_attention_heads": 6,
        "intermediate_size": 1536,
        "image_size": 224,
        "patch_size": 16,
    },
    "ViT tiny 64px (4 layers)": {
        "hidden_size": 96,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 192,
        "image_size": 64,
        "patch_size": 8,
    },
}
TARGETS = ["q_proj", "k_proj", "v_proj"]


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    """One training step (forward + backward) of PETAL rank r and of LoRA rank 2r on identical inputs."""
    from peft import LoraConfig, get_peft_model
    from transformers import ViTConfig, ViTModel

    import hf_margin  # noqa: F401
    from hf_margin.tuners.petal import PetalConfig

    config = ViTConfig(**CASES[case], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    petal = get_peft_model(ViTModel(config), PetalConfig(r=RANK, dropout=0.0, target_modules=TARGETS)).to(device)
    torch.manual_seed(0)
    lora = get_peft_model(ViTModel(config), LoraConfig(r=2 * RANK, target_modules=TARGETS)).to(device)
    size = config.image_size
    pixels = torch.randn(BATCH, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    quality = torch.rand(BATCH, generator=torch.Generator().manual_seed(1)).to(device)

    def petal_step() -> None:
        petal.zero_grad(set_to_none=True)
        petal(pixel_values=pixels, petal_quality=quality).last_hidden_state.square().mean().backward()

    def lora_step() -> None:
        lora.zero_grad(set_to_none=True)
        lora(pixel_values=pixels).last_hidden_state.square().mean().backward()

    return petal_step, lora_step


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    rows = []
    for case in CASES:
        measured = measure_case(__name__, case, make_steps, 5 if quick else 20, device)
        rows.append(BenchRow(f"PETAL r={RANK} (fwd+bwd, batch {BATCH})", case, f"PEFT LoRA r={2 * RANK}", *measured))
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
