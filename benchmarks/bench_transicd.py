"""TransICD's code-wise attention head (forward + backward, 2 notes of 2,500 tokens, d = 128) at 1,000, 10,000 and
ICD-10-CM's full code count (74,736 billable codes in `simple-icd-10-cm`; random label queries) in three forms: the
label-chunked head (the default, 16 MiB per chunk, each chunk recomputed in backward), the one-pass form that holds
the (batch, tokens, labels) scores, and (below 10,000 labels) chunks kept by autograd (no recompute: what the
recompute saves), each against a per-label loop in the same run; and one training step of the whole model (the
paper's encoder, 50 labels, LDAM) against the mean-pooled baseline, to show what the head costs.

Above 2,000 labels the loop (minutes per call on 2 CPU cores) runs over the first 1,000 and 2,000 labels and its time
and memory are extrapolated linearly (the line through both) to all labels, as its anchor column says; its time per
label grows with the label count, so this understates the loop's time. From 10,000 labels each form is timed by one
call without a warm-up call.

    python -m benchmarks.bench_transicd [--threads N]     # the head rows alone, as markdown (default 2 threads)
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import Tensor

from benchmarks._harness import BenchRow, Step, measure_case, measure_memory_in_subprocess, memory_main

TOKENS, HIDDEN, BATCH = 2500, 128, 2
FORMS = ("chunked", "one pass", "chunks kept by autograd")
LOOP_SUBSETS = (1_000, 2_000)  # labels the loop runs over when there are more than LOOP_SUBSETS[-1]
LONG = 10_000  # from this many labels: no warm-up call, one timed call, and no "chunks kept by autograd"
MODEL_CASE = "whole model step, 50 labels, 8 x 512 tokens"
BENCHMARK = "TransICD code-wise attention (fwd+bwd)"
MODULE = "benchmarks.bench_transicd"  # run in fresh processes for memory (also when this file is __main__)


def icd10cm_code_count() -> int:
    """Billable (leaf) ICD-10-CM codes in the installed `simple-icd-10-cm`."""
    import simple_icd_10_cm as cm

    return sum(1 for code in cm.get_all_codes(True) if cm.is_leaf(code))


def per_label_loop(head: torch.nn.Module, hidden: Tensor, mask: Tensor, labels: int | None = None) -> Tensor:
    """The head label by label (the first `labels` labels, default all): attention scores, softmax over tokens,
    weighted sum, score (what a direct transcription of the equations does)."""
    expanded = torch.tanh(head.hidden(hidden))
    logits = []
    for j in range(head.code_weight.shape[0] if labels is None else labels):
        scores = expanded @ head.scores.weight[j] + head.scores.bias[j]
        weights = scores.masked_fill(mask == 0, torch.finfo(scores.dtype).min).softmax(dim=1)
        per_code = (weights.unsqueeze(1) @ hidden).squeeze(1)
        logits.append(per_code @ head.code_weight[j] + head.code_bias[j])
    return torch.stack(logits, dim=1)


def chunks_kept_by_autograd(head: torch.nn.Module, hidden: Tensor, mask: Tensor) -> Tensor:
    """The chunked logits with plain autograd: every chunk's weights stay stored until backward."""
    from hf_margin.functional.code_wise_attention import code_wise_attention

    expanded = torch.tanh(head.hidden(hidden))
    chunk = head.chunk_size(hidden)
    params = (head.scores.weight, head.scores.bias, head.code_weight, head.code_bias)
    return torch.cat(
        [
            code_wise_attention(hidden, expanded, mask, *(p[i : i + chunk] for p in params))[0]
            for i in range(0, head.code_weight.shape[0], chunk)
        ],
        dim=1,
    )


def head_step(case: str, device: str) -> Step:
    """One forward + backward of case "<labels>:<form>" (a form of FORMS, or "loop" / "loop<n>" for n labels)."""
    from hf_margin.models.transicd import CodeWiseAttention

    labels, form = case.split(":")
    torch.manual_seed(0)
    head = CodeWiseAttention(HIDDEN, int(labels)).to(device)
    hidden = torch.randn(BATCH, TOKENS, HIDDEN, generator=torch.Generator().manual_seed(0)).to(device)
    hidden.requires_grad_()
    mask = torch.ones(BATCH, TOKENS, device=device)
    mask[1, TOKENS // 2 :] = 0

    def logits() -> Tensor:
        if form.startswith("loop"):
            return per_label_loop(head, hidden, mask, int(form[4:]) if form[4:] else None)
        if form == "chunks kept by autograd":
            return chunks_kept_by_autograd(head, hidden, mask)
        return head(hidden, mask, output_attentions=form == "one pass")[0]

    def step() -> None:
        logits().sum().backward()

    return step


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    if case == MODEL_CASE:
        return _model_steps(device)
    step = head_step(case, device)  # a head case is one step; `--memory CASE ours` runs it in a fresh process
    return step, step


def time_steps(steps: list[Step], repeats: int, device: str, warm_up: bool = True) -> list[float]:
    """Median milliseconds per call of each step (after one warm-up call each, by default), the steps alternating."""
    for step in steps if warm_up else []:
        step()
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for index, step in enumerate(steps):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[index].append(1000 * (time.perf_counter() - start))
    return [statistics.median(t) for t in times]


def head_rows(labels: int, repeats: int, device: str) -> list[BenchRow]:
    """The three forms and the loop at `labels` labels (the loop extrapolated beyond LOOP_SUBSETS[-1])."""
    subsets = LOOP_SUBSETS if labels > LOOP_SUBSETS[-1] else (labels,)
    forms = FORMS if labels < LONG else FORMS[:2]
    cases = [f"{labels}:{form}" for form in forms] + [f"{labels}:loop{n}" for n in subsets]
    millis = time_steps([head_step(case, device) for case in cases], repeats, device, warm_up=labels < LONG)
    mib = [measure_memory_in_subprocess(MODULE, case, "ours", device) for case in cases]
    loop_ms = _extrapolate(subsets, millis[len(forms) :], labels)
    loop_mb = _extrapolate(subsets, mib[len(forms) :], labels)
    anchor = "per-label loop" if len(subsets) == 1 else "per-label loop (1k and 2k labels, extrapolated linearly)"
    name = f"{labels} labels, 2 x 2,500 tokens, d=128"
    return [
        BenchRow(BENCHMARK, f"{name}: {form}", anchor, millis[i], loop_ms, mib[i], loop_mb)
        for i, form in enumerate(forms)
    ]


def _extrapolate(sizes: tuple[int, ...], values: list[float], target: int) -> float:
    if len(sizes) == 1:
        return values[0]
    slope = (values[1] - values[0]) / (sizes[1] - sizes[0])
    return values[1] + slope * (target - sizes[1])


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


def all_head_rows(device: str, quick: bool) -> list[BenchRow]:
    """The head rows at 1,000 and 10,000 labels and at ICD-10-CM's code count."""
    counts = (1_000, 10_000, icd10cm_code_count())
    return [row for labels in counts for row in head_rows(labels, 1 if quick or labels >= LONG else 3, device)]


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    rows = all_head_rows(device, quick)
    model_row = measure_case(MODULE, MODEL_CASE, make_steps, 3 if quick else 10, device)
    rows.append(BenchRow("TransICD training step", MODEL_CASE, "mean pooling + BCE (same encoder)", *model_row))
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
elif __name__ == "__main__":  # python -m benchmarks.bench_transicd [--threads N]: the head rows only, as markdown
    from benchmarks.run import markdown

    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
    torch.set_num_threads(threads)
    print(markdown(all_head_rows("cpu", quick=False), "cpu"))
