"""Gradient entanglement of margin-based preference losses: how chosen and rejected log-probabilities move together.

Yuan et al., "A Common Pitfall of Margin-based Language Model Alignment: Gradient Entanglement", arXiv 2410.13828.
A DPO-family step moves the parameters along ``g_w - g_l`` (g = gradient of a response's summed log-probability,
times the loss's per-pair scale), so to first order

    d log p(chosen)   ~  |g_w|^2 - <g_w, g_l>      (rises iff <g_w, g_l> <= |g_w|^2)
    d log p(rejected) ~  <g_w, g_l> - |g_l|^2      (falls iff <g_w, g_l> <= |g_l|^2)
    d margin          ~  |g_w - g_l|^2 >= 0.

The condition ratio ``<g_w, g_l> / min(|g_w|^2, |g_l|^2)`` is below 1 exactly in the ideal case (chosen up,
rejected down). (The authors' analysis script divides by ``min(|g_w|^2, |g_w|^2)``, the chosen norm twice; here
it is the minimum of both.) Since ``<g_w, g_l> <= |g_w| |g_l| <= max(|g_w|^2, |g_l|^2)``, the only other cases are
"both down" and "both up". When a gradient is zero or non-finite (a frozen or diverged model, a masked-out response)
the ratio is undefined: such a pair is "degenerate", with `condition` and `cosine` NaN, never counted as ideal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The JSONL file `GradientEntanglementCallback` writes into the run folder and `plots.load_records` reads.
RECORDS_FILE = "gradient_entanglement.jsonl"

Case = Literal["ideal", "both_down", "both_up", "degenerate"]
CASES: tuple[Case, ...] = ("ideal", "both_down", "both_up", "degenerate")


@dataclass(frozen=True)
class Entanglement:
    """The gradient geometry of one chosen/rejected pair (or of a batch's summed log-probabilities)."""

    inner: float
    norm_chosen: float
    norm_rejected: float
    cosine: float
    condition: float
    case: Case
    predicted_chosen: float  # |g_w|^2 - <g_w, g_l>: sign of the first-order change of log p(chosen)
    predicted_rejected: float  # <g_w, g_l> - |g_l|^2: sign of the first-order change of log p(rejected)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_degenerate(inner: float, chosen_sq: float, rejected_sq: float) -> bool:
    """Whether the condition ratio is undefined: a zero gradient (min(|g_w|^2, |g_l|^2) = 0) or a non-finite value."""
    return not all(math.isfinite(v) for v in (inner, chosen_sq, rejected_sq)) or min(chosen_sq, rejected_sq) <= 0


def classify(inner: float, chosen_sq: float, rejected_sq: float) -> Case:
    """Ideal (chosen up, rejected down), both down, or both up, from the first-order conditions; "degenerate" when a
    gradient is zero or non-finite (the conditions then say nothing)."""
    if is_degenerate(inner, chosen_sq, rejected_sq):
        return "degenerate"
    chosen_up, rejected_down = inner <= chosen_sq, inner <= rejected_sq
    if chosen_up and rejected_down:
        return "ideal"
    return "both_down" if rejected_down else "both_up"


def entanglement(grad_chosen: Tensor, grad_rejected: Tensor) -> Entanglement:
    """The statistics of two flattened gradients (of log p(chosen) and log p(rejected)), computed in float64.

    A zero or non-finite gradient gives case "degenerate" with `condition` and `cosine` NaN (undefined).
    """
    if grad_chosen.shape != grad_rejected.shape or grad_chosen.dim() != 1:
        raise ValueError(
            "`grad_chosen` and `grad_rejected` must be flat vectors of equal length, got shapes "
            f"{tuple(grad_chosen.shape)} and {tuple(grad_rejected.shape)}"
        )
    w, r = grad_chosen.double(), grad_rejected.double()
    inner, w_sq, l_sq = float(w @ r), float(w @ w), float(r @ r)
    undefined = is_degenerate(inner, w_sq, l_sq)
    return Entanglement(
        inner=inner,
        norm_chosen=w_sq**0.5,
        norm_rejected=l_sq**0.5,
        # w_sq**0.5 * l_sq**0.5, not (w_sq * l_sq)**0.5: the product of two tiny squared norms underflows to 0
        cosine=math.nan if undefined else inner / (w_sq**0.5 * l_sq**0.5),
        condition=math.nan if undefined else inner / min(w_sq, l_sq),
        case=classify(inner, w_sq, l_sq),
        predicted_chosen=w_sq - inner,
        predicted_rejected=inner - l_sq,
    )


def select_parameters(model: nn.Module, which: str | Sequence[str] = "trainable") -> list[tuple[str, nn.Parameter]]:
    """The parameters to measure over: ``"trainable"`` (e.g. the LoRA weights), ``"all"``, or names containing
    any of the given substrings."""
    named = list(model.named_parameters())
    if which == "trainable":
        chosen = [(n, p) for n, p in named if p.requires_grad]
    elif which == "all":
        chosen = named
    else:
        patterns = [which] if isinstance(which, str) else list(which)
        chosen = [(n, p) for n, p in named if any(pattern in n for pattern in patterns)]
    if not chosen:
        raise ValueError(f"no parameters match `params`={which!r}")
    return chosen


def sequence_logps(model: nn.Module, input_ids: Tensor, attention_mask: Tensor, completion_mask: Tensor) -> Tensor:
    """Summed log-probability of each row's completion tokens (completion_mask = 1), shape (rows,)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    targets = input_ids[:, 1:]
    token_logps = torch.gather(F.log_softmax(logits, dim=-1), 2, targets.unsqueeze(-1)).squeeze(-1)
    return (token_logps * completion_mask[:, 1:]).sum(dim=1)


def _flat_grad(output: Tensor, parameters: list[nn.Parameter], retain: bool) -> Tensor:
    grads = torch.autograd.grad(output, parameters, retain_graph=retain, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, parameters, strict=True)]
    )


def pair_gradients(
    model: nn.Module, batch: dict[str, Tensor], parameters: Iterable[nn.Parameter]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of the summed chosen and summed rejected log-probabilities of a preference batch (TRL's layout:
    the first half of the rows are the chosen sequences, the second half the rejected), and those log-probs."""
    params = list(parameters)
    logps = sequence_logps(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    chosen, rejected = logps.chunk(2)
    with torch.enable_grad():
        grad_chosen = _flat_grad(chosen.sum(), params, retain=True)
        grad_rejected = _flat_grad(rejected.sum(), params, retain=False)
    return grad_chosen, grad_rejected, chosen.detach(), rejected.detach()


def per_pair_entanglement(
    model: nn.Module, batch: dict[str, Tensor], parameters: Iterable[nn.Parameter]
) -> list[Entanglement]:
    """The statistics of every pair of a preference batch, one pair at a time."""
    params = list(parameters)
    pairs = batch["input_ids"].shape[0] // 2
    results = []
    for i in range(pairs):
        rows = torch.tensor([i, i + pairs])
        one = {k: batch[k][rows] for k in ("input_ids", "attention_mask", "completion_mask")}
        grad_chosen, grad_rejected, _, _ = pair_gradients(model, one, params)
        results.append(entanglement(grad_chosen, grad_rejected))
    return results


def token_gradient_cosines(
    model: nn.Module,
    chosen_ids: Tensor,
    rejected_ids: Tensor,
    prompt_length: int,
    parameters: Iterable[nn.Parameter],
) -> Tensor:
    """Cosine between the gradients of each chosen-response token's log-prob and each rejected-response token's
    (one pair; ids include the prompt, whose first `prompt_length` tokens are not scored): shape (T_w, T_l)."""
    params = list(parameters)

    def token_grads(ids: Tensor) -> Tensor:
        logits = model(input_ids=ids.unsqueeze(0)).logits[0, :-1].float()
        token_logps = F.log_softmax(logits, dim=-1).gather(1, ids[1:].unsqueeze(1)).squeeze(1)[prompt_length - 1 :]
        with torch.enable_grad():
            rows = [_flat_grad(lp, params, retain=True) for lp in token_logps]
        return F.normalize(torch.stack(rows).double(), dim=1)

    return token_grads(chosen_ids) @ token_grads(rejected_ids).t()
