"""TransICD's code-wise attention, whole or over labels in chunks of bounded memory.

Biswas, Pham, Zhang, "TransICD: Transformer Based Code-wise Attention Model for Explainable ICD Coding"
(arXiv 2104.10652): with token states H (B, S, d) and ``E = tanh(W1 H + b1)`` (B, S, d'),
``A_j = softmax_tokens(E w_j + b_j)`` (padding masked), ``V_j = A_j^T H``, ``z_j = u_j . V_j + c_j``.

The whole form holds (B, S, L) scores at once, several GiB for two long notes at ICD-10-CM's ~75,000 codes.
:func:`chunked_code_wise_logits` computes the same logits `label_chunk_size` labels at a time, and its backward pass
recomputes each chunk's attention instead of storing it (activation checkpointing per chunk, with the gradients
written by hand), so both passes peak at O(B x S x chunk) beyond the inputs. Both forms compute the scores and the
softmax in float32 or wider (under bf16/fp16 autocast too).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_positive_int, check_positive_number

# (batch, tokens, chunk) float32 blocks alive at once in a chunk's backward pass: weights, their gradient, and two
# temporaries of the softmax backward.
LIVE_BLOCKS = 4


def label_chunk_size(batch: int, tokens: int, num_labels: int, memory_mb: float, dtype: torch.dtype) -> int:
    """Labels per chunk so that a chunk's (batch, tokens, chunk) blocks fit in `memory_mb` MiB (at least 1 label,
    at most `num_labels`); `dtype` is the scores' dtype (float32 or wider)."""
    check_positive_number(memory_mb, "memory_mb")
    per_label = batch * tokens * LIVE_BLOCKS * torch.empty((), dtype=dtype).element_size()
    return max(1, min(num_labels, int(memory_mb * 2**20) // max(1, per_label)))


def code_wise_scores(expanded: Tensor, attention_mask: Tensor, score_weight: Tensor, score_bias: Tensor) -> Tensor:
    """(B, S, L') float32-or-wider scores ``E w_j + b_j`` of the labels whose rows of W2 are given; padding gets
    the dtype's minimum. `score_weight` is (L', d') or per note (B, L', d'), `score_bias` (L',) or (B, L')."""
    if score_weight.dim() == 3:
        scores = torch.baddbmm(score_bias.unsqueeze(1).to(expanded.dtype), expanded, score_weight.transpose(1, 2))
    else:
        scores = F.linear(expanded, score_weight, score_bias)
    scores = at_least_float32(scores)
    return scores.masked_fill(attention_mask.unsqueeze(-1) == 0, torch.finfo(scores.dtype).min)


def code_wise_attention(
    hidden: Tensor,
    expanded: Tensor,
    attention_mask: Tensor,
    score_weight: Tensor,
    score_bias: Tensor,
    code_weight: Tensor,
    code_bias: Tensor,
) -> tuple[Tensor, Tensor]:
    """The whole form: (B, L) logits and (B, L, S) attention weights (padding gets 0), plain autograd.

    Args:
        hidden: (B, S, d) token states H.
        expanded: (B, S, d') ``tanh(W1 H + b1)``.
        attention_mask: (B, S), 0 at padding.
        score_weight, score_bias: W2 (L, d') and b2 (L,).
        code_weight, code_bias: the per-code scorers U (L, d) and c (L,).
    """
    weights = code_wise_scores(expanded, attention_mask, score_weight, score_bias).softmax(dim=1).transpose(1, 2)
    per_code = weights @ hidden.to(weights.dtype)  # (B, L, d)
    logits = (per_code * code_weight.to(weights.dtype)).sum(-1) + code_bias.to(weights.dtype)
    return logits, weights


def chunked_code_wise_logits(
    hidden: Tensor,
    expanded: Tensor,
    attention_mask: Tensor,
    score_weight: Tensor,
    score_bias: Tensor,
    code_weight: Tensor,
    code_bias: Tensor,
    chunk_size: int,
) -> Tensor:
    """The logits of :func:`code_wise_attention`, `chunk_size` labels at a time (same arguments), in bounded memory.

    Nothing of size (B, S, L) is built or stored: the forward pass keeps only its inputs, and the backward pass
    recomputes each chunk's attention weights and applies the softmax and matmul gradients by hand. Under autocast
    the backward pass runs under the forward pass's autocast settings, as autograd would.
    """
    check_positive_int(chunk_size, "chunk_size")
    logits: Tensor = _ChunkedCodeWiseLogits.apply(
        hidden, expanded, attention_mask, score_weight, score_bias, code_weight, code_bias, chunk_size
    )
    return logits


def _chunk_logits(hidden: Tensor, expanded: Tensor, mask: Tensor, params: tuple[Tensor, ...], labels: slice) -> Tensor:
    score_weight, score_bias, code_weight, code_bias = (p[labels] for p in params)
    return code_wise_attention(hidden, expanded, mask, score_weight, score_bias, code_weight, code_bias)[0]


class _ChunkedCodeWiseLogits(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        hidden: Tensor,
        expanded: Tensor,
        attention_mask: Tensor,
        score_weight: Tensor,
        score_bias: Tensor,
        code_weight: Tensor,
        code_bias: Tensor,
        chunk_size: int,
    ) -> Tensor:
        device = hidden.device.type
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.chunk_size = chunk_size
        ctx.save_for_backward(hidden, expanded, attention_mask, score_weight, score_bias, code_weight, code_bias)
        params = (score_weight, score_bias, code_weight, code_bias)
        chunks = [
            _chunk_logits(hidden, expanded, attention_mask, params, slice(start, start + chunk_size))
            for start in range(0, score_weight.shape[0], chunk_size)
        ]
        return torch.cat(chunks, dim=1)

    @staticmethod
    def backward(ctx: Any, grad_logits: Tensor) -> tuple[Tensor | None, ...]:
        hidden, expanded, mask, score_weight, score_bias, code_weight, code_bias = ctx.saved_tensors
        device, enabled, dtype = ctx.autocast
        wide = at_least_float32(grad_logits).dtype
        need_hidden, need_expanded = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        d_hidden = torch.zeros(hidden.shape, dtype=wide, device=hidden.device)
        d_expanded = torch.zeros(expanded.shape, dtype=wide, device=expanded.device)
        d_params = [torch.zeros(p.shape, dtype=wide, device=p.device) for p in (score_weight, score_bias, code_weight)]
        d_score_weight, d_score_bias, d_code_weight = d_params
        # Without autocast the matmuls need one dtype: the float32-or-wider one of the scores.
        hidden_wide, expanded_wide = hidden.to(wide), expanded.to(wide)
        with torch.autocast(device, dtype=dtype, enabled=enabled):
            for start in range(0, score_weight.shape[0], ctx.chunk_size):
                labels = slice(start, start + ctx.chunk_size)
                scores = code_wise_scores(expanded, mask, score_weight[labels], score_bias[labels])
                weights = scores.softmax(dim=1)  # (B, S, C)
                del scores
                grad = grad_logits[:, labels].to(weights.dtype)  # (B, C)
                d_code_weight[labels] = torch.einsum("bc,bcd->cd", grad, weights.transpose(1, 2) @ hidden_wide)
                d_per_code = grad.unsqueeze(-1) * code_weight[labels].to(weights.dtype)  # (B, C, d)
                if need_hidden:
                    d_hidden += weights @ d_per_code
                d_scores = hidden_wide @ d_per_code.transpose(1, 2)  # dL/dA, (B, S, C)
                d_scores -= (weights * d_scores).sum(1, keepdim=True)
                d_scores *= weights  # the softmax's backward: A * (dA - sum_t A dA)
                del weights
                if need_expanded:
                    d_expanded += d_scores @ score_weight[labels].to(wide)
                d_score_weight[labels] = d_scores.flatten(0, 1).transpose(0, 1) @ expanded_wide.flatten(0, 1)
                d_score_bias[labels] = d_scores.sum((0, 1))
        return (
            d_hidden.to(hidden.dtype) if need_hidden else None,
            d_expanded.to(expanded.dtype) if need_expanded else None,
            None,
            d_score_weight.to(score_weight.dtype),
            d_score_bias.to(score_bias.dtype),
            d_code_weight.to(code_weight.dtype),
            grad_logits.sum(0).to(code_bias.dtype),
            None,
        )
