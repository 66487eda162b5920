"""Chunked code-wise attention (TransICD) against the one-pass form: values and gradients in float64 and under bf16
autocast, gradcheck, nothing of size (batch, tokens, labels) kept for backward, the chunk size from the budget."""

from __future__ import annotations

import pytest
import torch

from hf_margin.functional.code_wise_attention import (
    LIVE_BLOCKS,
    chunked_code_wise_logits,
    code_wise_attention,
    label_chunk_size,
)

B, S, D, D2, L = 3, 9, 6, 8, 11


def inputs(dtype: torch.dtype = torch.float64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_()

    mask = torch.ones(B, S)
    mask[1, 5:] = 0  # a padded note
    mask[2, 1] = 0  # and a hole inside one
    return {
        "hidden": leaf(B, S, D),
        "w1": leaf(D2, D),
        "attention_mask": mask,
        "score_weight": leaf(L, D2),
        "score_bias": leaf(L),
        "code_weight": leaf(L, D),
        "code_bias": leaf(L),
    }


def logits_and_grads(x: dict[str, torch.Tensor], chunk: int | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    expanded = torch.tanh(x["hidden"] @ x["w1"].T)
    args = (x["hidden"], expanded, x["attention_mask"], x["score_weight"], x["score_bias"])
    args += (x["code_weight"], x["code_bias"])
    logits = code_wise_attention(*args)[0] if chunk is None else chunked_code_wise_logits(*args, chunk)
    # An uneven upstream gradient, so that every label's gradient differs.
    target = torch.linspace(-1.0, 2.0, B * L, dtype=torch.float64).view(B, L).to(logits.dtype)
    leaves = [v for v in x.values() if v.requires_grad]
    return logits, list(torch.autograd.grad((logits * target).sum(), leaves))


@pytest.mark.parametrize("chunk", [1, 4, L, 100])
def test_chunked_equals_one_pass_in_float64(chunk: int) -> None:
    x = inputs()
    whole, whole_grads = logits_and_grads(x, None)
    chunked, chunked_grads = logits_and_grads(x, chunk)
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-12)
    for got, want in zip(chunked_grads, whole_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_chunked_equals_one_pass_under_bf16_autocast() -> None:
    x = inputs(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        whole, whole_grads = logits_and_grads(x, None)
        chunked, chunked_grads = logits_and_grads(x, 3)
    exact, exact_grads = logits_and_grads(inputs(torch.float64), None)
    assert chunked.dtype == whole.dtype == torch.float32, "logits stay float32 under autocast"
    torch.testing.assert_close(chunked, whole, rtol=1e-3, atol=1e-3)  # the same forward ops, chunk by chunk
    torch.testing.assert_close(chunked.double(), exact, rtol=0.0, atol=3e-2 * float(exact.abs().max()))
    # bf16 matmuls in both backward passes: equal to bf16 precision on the gradients' scale.
    scale = max(float(g.abs().max()) for g in exact_grads)
    for got, want in zip(chunked_grads, whole_grads, strict=True):
        assert got.dtype == want.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=0.0, atol=1e-2 * scale)


def test_gradcheck() -> None:
    g = torch.Generator().manual_seed(1)
    leaves = [
        torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
        for shape in [(2, 4, 3), (2, 4, 5), (5, 5), (5,), (5, 3), (5,)]
    ]
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])

    def f(hidden, expanded, score_weight, score_bias, code_weight, code_bias):  # type: ignore[no-untyped-def]
        return chunked_code_wise_logits(hidden, expanded, mask, score_weight, score_bias, code_weight, code_bias, 2)

    assert torch.autograd.gradcheck(f, tuple(leaves))


def test_frozen_states_get_no_gradient_and_the_rest_still_match() -> None:
    x = inputs()
    x["hidden"].requires_grad_(False)
    whole, whole_grads = logits_and_grads(x, None)
    chunked, chunked_grads = logits_and_grads(x, 2)
    torch.testing.assert_close(chunked, whole)
    for got, want in zip(chunked_grads, whole_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_nothing_of_size_batch_tokens_labels_is_kept_for_backward() -> None:
    x = inputs(torch.float32)
    expanded = torch.tanh(x["hidden"] @ x["w1"].T)
    args = (x["hidden"], expanded, x["attention_mask"], x["score_weight"], x["score_bias"])
    args += (x["code_weight"], x["code_bias"])

    def largest_saved(run) -> int:  # type: ignore[no-untyped-def]
        sizes: list[int] = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            run()
        return max(sizes)

    assert largest_saved(lambda: code_wise_attention(*args)) >= B * S * L
    assert largest_saved(lambda: chunked_code_wise_logits(*args, 2)) == max(B * S * D2, B * S * D)


def test_chunk_size_fits_the_budget() -> None:
    per_label = 2 * 2500 * LIVE_BLOCKS * 4
    chunk = label_chunk_size(2, 2500, 75_000, 64.0, torch.float32)
    assert chunk * per_label <= 64 * 2**20 < (chunk + 1) * per_label
    assert label_chunk_size(2, 2500, 75_000, 64.0, torch.float64) == chunk // 2
    assert label_chunk_size(2, 2500, 10, 64.0, torch.float32) == 10, "never more than the labels"
    assert label_chunk_size(64, 100_000, 10, 0.001, torch.float32) == 1, "never less than one label"
    with pytest.raises(ValueError, match="memory_mb"):
        label_chunk_size(2, 10, 10, 0.0, torch.float32)


def test_bad_chunk_size_is_rejected() -> None:
    x = inputs()
    expanded = torch.tanh(x["hidden"] @ x["w1"].T)
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_code_wise_logits(
            x["hidden"],
            expanded,
            x["attention_mask"],
            x["score_weight"],
            x["score_bias"],
            x["code_weight"],
            x["code_bias"],
            0,
        )
