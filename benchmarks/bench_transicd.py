"""TransICD's code-wise attention head against a straightforward per-label loop (forward + backward, 2 notes of
2,500 tokens, d = 128) for 50, 1,000 and 10,000 labels; and one training step of the whole model (the paper's
encoder, 50 labels, LDAM) against the mean-pooled baseline, to show what the head costs."""

from __future__ import annotations

import sys

import torch
from torch import Tensor

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

TOKENS, HIDDEN, BATCH = 2500, 128, 2
HEAD_CASES = {f"{labels} labels, 2 x 2,500 tokens, d=128": labels for labels in (50, 1_000, 10_000)}
MODEL_CASE = "whole model step, 50 labels, 8 x 512 tokens"


def per_label_loop(head: torch.nn.Module, hidden: Tensor, mask: Tensor) -> Tensor:
    """The head label by label: attention scores, softmax over tokens, weighted sum, score (what a direct
    transcription of the equations does)."""
    expanded = torch.tanh(head.hidden(hidden))
    logits = []
    for j in range(head.code_weight.shape[0]):
        scores = expanded @ head.scores.weight[j] + head.scores.bias[j]
        weights = scores.masked_fill(mask == 0, torch.finfo(scores.dtype).min).softmax(dim=1)
        per_code = (weights.unsqueeze(1) @ hidden).squeeze(1)
        logits.append(per_code @ head.code_weight[j] + head.code_bias[j])
    return torch.stack(logits, dim=1)


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    from hf_margin.models.transicd import CodeWiseAttention

    generator = torch.Generator().manual_seed(0)
    if case == MODEL_CASE:
        return _model_steps(device)
    head = CodeWiseAttention(HIDDEN, HEAD_CASES[case]).to(device)
    hidden = torch.randn(BATCH, TOKENS, HIDDEN, generator=generator).to(device).requires_grad_()
    mask = torch.ones(BATCH, TOKENS, device=device)
    mask[1, TOKENS // 2 :] = 0

    def ours() -> None:
        head(hidden, mask)[0].sum().backward()

    def loop() -> None:
        per_label_loop(head, hidden, mask).sum().backward()

    return ours, loop


def _model_steps(device: str) -> tuple[Step, Step]:
    from hf_margin.models.transicd import TransICDConfig, TransICDModel

    steps = []
    for pooling in ("attention", "mean"):
        torch.manual_seed(0)
        config = TransICDConfig(
            id2label={i: f"C{i}" for i in range(50)}, label_counts=list(range(1, 51)), pooling=pooling, vocab_size=30522
        )
        model = TransICDModel(config).to(device)
        ids = torch.randint(1, 30522, (8, 512), generator=torch.Generator().manual_seed(0)).to(device)
        labels = (torch.rand(8, 50, generator=torch.Generator().manual_seed(1)) < 0.1).float().to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step(
            model: TransICDModel = model,
            ids: Tensor = ids,
            labels: Tensor = labels,
            optimizer: torch.optim.Optimizer = optimizer,
        ) -> None:
            loss = model(ids, labels=labels).loss
            assert loss is not None
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps.append(step)
    return steps[0], steps[1]


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    rows = [
        BenchRow(
            "TransICD code-wise attention (fwd+bwd)",
            case,
            "per-label loop",
            *measure_case(__name__, case, make_steps, 2 if quick else 5, device),
        )
        for case in HEAD_CASES
    ]
    model_row = measure_case(__name__, MODEL_CASE, make_steps, 3 if quick else 10, device)
    rows.append(BenchRow("TransICD training step", MODEL_CASE, "mean pooling + BCE (same encoder)", *model_row))
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
