"""What the per-pair preference trainers share: TRL 1.16's policy and reference log-probabilities, a collator
that carries per-pair columns, and the standard DPO metrics.

The log-probabilities are computed exactly as `trl.DPOTrainer._compute_loss` computes them (fused LM head,
precomputed reference, a separate reference model, or the PEFT model with its adapter disabled), so a per-pair
loss on top of them equals TRL's when its weights are 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from hf_margin._extras import require

require("trl", "trl", "The preference trainers")

from trl import DPOTrainer  # noqa: E402

_TRL_NON_MODEL_KEYS = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}


@dataclass
class PairColumnsCollator:
    """Wraps a preference collator and adds per-pair float columns (e.g. ``margin``) as (batch,) tensors."""

    collator: Any
    columns: tuple[str, ...]

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(examples)
        for column in self.columns:
            if column not in examples[0]:
                raise KeyError(f"the batch has no `{column}` column; the dataset must carry one value per pair")
            batch[column] = torch.tensor([float(example[column]) for example in examples], dtype=torch.float32)
        return batch


def sequence_logps(
    trainer: DPOTrainer, model: torch.nn.Module, inputs: dict[str, Any], extra_keys: set[str]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(chosen, rejected, reference chosen, reference rejected) summed log-probabilities of one padded batch."""
    model_kwargs = {k: v for k, v in inputs.items() if k not in _TRL_NON_MODEL_KEYS | extra_keys}
    model_kwargs["use_cache"] = False
    completion_mask = inputs["completion_mask"]
    labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
    outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
    seq_len = completion_mask.shape[1] - 1
    chosen, rejected = outputs.log_probs[:, -seq_len:].sum(dim=1).chunk(2, dim=0)
    if trainer.precompute_ref_logps:
        ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
    else:
        reference = trainer.ref_model if trainer.ref_model is not None else trainer.model
        ref_chosen, ref_rejected = trainer.compute_ref_log_probs(reference, inputs)
    return chosen, rejected, ref_chosen, ref_rejected


def log_dpo_metrics(
    trainer: DPOTrainer,
    chosen: Tensor,
    rejected: Tensor,
    chosen_logratios: Tensor,
    rejected_logratios: Tensor,
    beta: float,
) -> None:
    """TRL's reward and log-prob metrics (rewards/chosen, .../margins, logps/...), gathered across processes."""
    mode = "train" if trainer.model is not None and trainer.model.training else "eval"
    gather = trainer.accelerator.gather
    chosen_rewards, rejected_rewards = beta * chosen_logratios.detach(), beta * rejected_logratios.detach()
    append_metrics(
        trainer._metrics[mode],
        {
            "rewards/chosen": gather(chosen_rewards).mean(),
            "rewards/rejected": gather(rejected_rewards).mean(),
            "rewards/accuracies": gather((chosen_rewards > rejected_rewards).float()).mean(),
            "rewards/margins": gather(chosen_rewards - rejected_rewards).mean(),
            "logps/chosen": gather(chosen.detach()).mean(),
            "logps/rejected": gather(rejected.detach()).mean(),
        },
    )


def append_metrics(metrics: dict[str, list[float]], values: dict[str, Tensor]) -> None:
    """Append each scalar tensor to its metric list, read back to the host in one copy (one sync per step)."""
    numbers = torch.stack([value.detach().float() for value in values.values()]).tolist()
    for name, number in zip(values, numbers, strict=True):
        metrics[name].append(number)


def check_supported(args: Any, method: str) -> None:
    """The per-pair trainers weight the sigmoid DPO loss on summed log-probs; refuse options they ignore."""
    if list(args.loss_type) != ["sigmoid"]:
        raise ValueError(
            f"{method} weights the sigmoid DPO loss: `loss_type` must be ['sigmoid'], got {args.loss_type}"
        )
    if args.ld_alpha is not None:
        raise ValueError(f"{method} does not support `ld_alpha` (LD-DPO); leave it None")
    if args.f_divergence_type != "reverse_kl":
        raise ValueError(f"{method} needs `f_divergence_type='reverse_kl'`, got {args.f_divergence_type!r}")
    if args.use_weighting:
        raise ValueError(f"{method} replaces WPO's weights: `use_weighting` must be False")


def check_reference(model: Any, ref_model: Any, peft_config: Any, args: Any, method: str) -> None:
    """A policy built from a config has no name TRL could load the reference model from: say so before TRL fails
    with an opaque Hub error."""
    if isinstance(model, str) or ref_model is not None or peft_config is not None or args.precompute_ref_log_probs:
        return
    if getattr(model, "peft_config", None) or getattr(model.config, "_name_or_path", ""):
        return
    raise ValueError(
        f"{method}: the policy was built from a config (empty `config._name_or_path`), so the reference model cannot "
        "be loaded by name: pass `ref_model=` (e.g. copy.deepcopy(policy)) or `peft_config=` (the reference is then "
        "the policy with its adapter disabled)"
    )


def normalized_pair_surrogate(
    loss: Tensor, chosen: Tensor, rejected: Tensor, coefficients: Tensor, parameters: list[torch.nn.Parameter]
) -> Tensor:
    """`loss` with its gradient replaced by the normalised-pair direction (derived from Yuan et al.'s analysis).

    A DPO-family loss's gradient is ``-(grad L_w - grad L_l)`` with ``L_w = sum_i a_i log p(chosen_i)`` and
    ``L_l = sum_i a_i log p(rejected_i)`` (``a_i`` the detached per-pair slopes). The returned tensor has the
    value of `loss` and the gradient ``-|grad L_w - grad L_l| u / |u|`` with
    ``u = grad L_w / |grad L_w| - grad L_l / |grad L_l|``: the loss gradient's length, but a direction along which,
    to first order, L_w rises and L_l falls for any overlap of the two gradients (Case 1 of the paper). Without the
    ``1 / |u|`` the length would be |u| = sqrt(2 - 2 cos) times the usual one (near 0 for entangled pairs, up to 2
    for opposed ones). When the two gradients point the same way (u = 0) the gradient is zero. The paper does not
    publish its exact update; this is our derivation, applied to the batch's weighted sums (per-pair normalisation
    would need two backward passes per pair).
    """
    weighted_chosen, weighted_rejected = (coefficients * chosen).sum(), (coefficients * rejected).sum()
    grads_w = torch.autograd.grad(weighted_chosen, parameters, retain_graph=True, allow_unused=True)
    grads_l = torch.autograd.grad(weighted_rejected, parameters, retain_graph=True, allow_unused=True)
    flat_w = torch.cat(
        [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads_w, parameters, strict=True)]
    )
    flat_l = torch.cat(
        [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads_l, parameters, strict=True)]
    )
    norm_w, norm_l = flat_w.norm().clamp_min(1e-12), flat_l.norm().clamp_min(1e-12)
    direction_norm = (flat_w / norm_w - flat_l / norm_l).norm().clamp_min(1e-12)
    scale = (flat_w - flat_l).norm() / direction_norm
    surrogate = -scale * (weighted_chosen / norm_w - weighted_rejected / norm_l)
    return loss.detach() + surrogate - surrogate.detach()
