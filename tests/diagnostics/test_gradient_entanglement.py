"""Gradient-entanglement statistics: first-order predictions against finite differences, the case conditions,
the token-level signature of shared suffixes, and agreement with a direct autograd computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hf_margin.diagnostics.gradient_entanglement import (
    CASES,
    classify,
    entanglement,
    pair_gradients,
    per_pair_entanglement,
    select_parameters,
    sequence_logps,
    token_gradient_cosines,
)
from tests.trainers.tiny_lm import tiny_llama, tiny_tokenizer


def _pair_batch(prompt: str, chosen: str, rejected: str) -> dict[str, torch.Tensor]:
    tokenizer = tiny_tokenizer()
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c, r = (tokenizer(t, add_special_tokens=False)["input_ids"] for t in (chosen, rejected))
    length = len(p) + max(len(c), len(r))
    rows, masks, completions = [], [], []
    for completion in (c, r):
        ids = p + completion
        pad = length - len(ids)
        rows.append(ids + [tokenizer.pad_token_id] * pad)
        masks.append([1] * len(ids) + [0] * pad)
        completions.append([0] * len(p) + [1] * len(completion) + [0] * pad)
    return {
        "input_ids": torch.tensor(rows),
        "attention_mask": torch.tensor(masks),
        "completion_mask": torch.tensor(completions),
    }


def test_first_order_predictions_match_finite_differences() -> None:
    model = tiny_llama(0).double()
    batch = _pair_batch("write a review", "the film was great fun", "the plot is dull")
    params = [p for _, p in select_parameters(model, "all")]
    grad_w, grad_l, chosen, rejected = pair_gradients(model, batch, params)
    stats = entanglement(grad_w, grad_l)
    beta, eta = 0.1, 1e-3
    h = float(chosen - rejected)  # policy == reference direction: the DPO coefficient at this point
    step = eta * beta * torch.sigmoid(torch.tensor(-beta * h)).item()
    with torch.no_grad():
        offset = 0
        for p in params:  # one gradient-descent step on the DPO loss: theta += C (g_w - g_l)
            n = p.numel()
            p += step * (grad_w - grad_l)[offset : offset + n].view_as(p)
            offset += n
        new_chosen, new_rejected = sequence_logps(model, **batch).chunk(2)
    observed = (float(new_chosen - chosen), float(new_rejected - rejected))
    predicted = (step * stats.predicted_chosen, step * stats.predicted_rejected)
    for seen, expected in zip(observed, predicted, strict=True):
        assert abs(seen - expected) <= 0.02 * abs(expected) + 1e-9
    assert observed[0] - observed[1] > 0  # the margin rises


def test_margin_change_is_never_negative_and_condition_marks_the_ideal_case() -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(500):
        w, r = torch.randn(20, generator=generator), torch.randn(20, generator=generator)
        r = r + 3 * torch.rand(1, generator=generator) * w  # make entangled pairs common
        stats = entanglement(w, r * torch.rand(1, generator=generator) * 3)
        assert stats.predicted_chosen - stats.predicted_rejected >= -1e-9  # |g_w - g_l|^2
        assert (stats.condition < 1) == (stats.case == "ideal") or stats.condition == 1


def test_cases() -> None:
    assert classify(-1.0, 1.0, 4.0) == "ideal"
    assert classify(2.0, 1.0, 4.0) == "both_down"  # chosen falls (inner > |g_w|^2), rejected falls
    assert classify(2.0, 4.0, 1.0) == "both_up"


def test_values_equal_a_direct_autograd_computation() -> None:
    model = tiny_llama(0)
    batch = _pair_batch("write a review", "a great movie", "a bad movie")
    params = [p for _, p in select_parameters(model, "all")]
    grad_w, grad_l, _, _ = pair_gradients(model, batch, params)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    token = F.log_softmax(logits, -1).gather(2, batch["input_ids"][:, 1:, None]).squeeze(-1)
    seq = (token * batch["completion_mask"][:, 1:]).sum(1)
    direct_w = torch.cat([g.reshape(-1) for g in torch.autograd.grad(seq[0], params, retain_graph=True)])
    direct_l = torch.cat([g.reshape(-1) for g in torch.autograd.grad(seq[1], params)])
    torch.testing.assert_close(grad_w, direct_w)
    torch.testing.assert_close(grad_l, direct_l)
    stats = per_pair_entanglement(model, batch, params)[0]
    assert abs(stats.inner - float(direct_w.double() @ direct_l.double())) < 1e-6 * abs(stats.inner) + 1e-9


def test_shared_suffix_entangles_more_than_one_differing_token() -> None:
    model = tiny_llama(0)
    params = [p for _, p in select_parameters(model, "all")]
    suffix = " the film was very fun the plot was very good the acting was great"
    short = per_pair_entanglement(model, _pair_batch("write a review", "good", "bad"), params)[0]
    long = per_pair_entanglement(model, _pair_batch("write a review", "good" + suffix, "bad" + suffix), params)[0]
    assert long.cosine > short.cosine
    assert long.cosine > 0.5


def test_token_cosines_of_identical_responses_have_a_unit_diagonal() -> None:
    model = tiny_llama(0)
    tokenizer = tiny_tokenizer()
    ids = torch.tensor(tokenizer("write a review the film was fun", add_special_tokens=False)["input_ids"])
    cosines = token_gradient_cosines(model, ids, ids, prompt_length=3, parameters=list(model.parameters()))
    assert cosines.shape == (4, 4)
    torch.testing.assert_close(cosines.diagonal(), torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize(
    ("grad_chosen", "grad_rejected"),
    [
        ([0.0, 0.0], [0.0, 0.0]),  # both zero: was "ideal" with condition +inf
        ([0.0, 0.0], [1.0, 2.0]),  # one zero: the ratio's denominator min(|g_w|^2, |g_l|^2) is 0
        ([3.0, -1.0], [0.0, 0.0]),
        ([float("nan"), 1.0], [1.0, 2.0]),  # a diverged model's gradients
        ([1.0, 2.0], [float("inf"), 0.0]),
    ],
)
def test_zero_or_non_finite_gradients_are_degenerate_never_ideal(
    grad_chosen: list[float], grad_rejected: list[float]
) -> None:
    stats = entanglement(torch.tensor(grad_chosen), torch.tensor(grad_rejected))
    assert stats.case == "degenerate"
    assert math.isnan(stats.condition) and math.isnan(stats.cosine)
    assert classify(stats.inner, stats.norm_chosen**2, stats.norm_rejected**2) == "degenerate"
    assert "degenerate" in CASES


def test_tiny_but_non_zero_gradients_are_still_classified() -> None:
    stats = entanglement(
        torch.tensor([1e-150, 0.0], dtype=torch.float64), torch.tensor([0.0, 1e-150], dtype=torch.float64)
    )
    assert stats.case == "ideal" and stats.condition == 0.0 and stats.cosine == 0.0
