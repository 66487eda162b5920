"""The seam between TRL's `DPOTrainer` and the per-pair preference trainers (MADPO, beta-DPO).

TRL (1.16) has no per-pair hook: its loss, the MoE router auxiliary loss and every metric are computed inline
in the private ``DPOTrainer._compute_loss``. The trainers therefore do not re-implement it. They run TRL's own
``compute_loss`` unchanged and, while it runs, record the outputs of the policy's and the reference's forward
passes (forward hooks on the trainer's model and reference model, filtered on TRL's ``fused_lm_head=True`` call).
From those they read the per-pair sequence log-probabilities TRL used and swap TRL's sigmoid DPO term for their
own per-pair term:

    loss = loss_TRL + loss_weight * (own_term - mean_i -log sigmoid(beta delta_i))

so the value and gradient are those of the own term, and everything else TRL adds (the MoE aux loss) and logs
(rewards, log-probs, entropy, num_tokens, logits, token accuracy, aux loss) is TRL's code at run time. With neutral
weights the correction is exactly zero. docs/integrations.md proposes the upstream hook that would replace this.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._compat import check_host_versions
from hf_margin._extras import require

require("trl", "trl", "The preference trainers")
check_host_versions("accelerate", "datasets")  # TRL trains through both

from datasets import Dataset, load_from_disk  # noqa: E402
from trl import DPOTrainer  # noqa: E402


class SharedReferenceCacheMixin:
    """Makes TRL's ``precompute_ref_log_probs=True`` launch on several processes with an in-memory dataset.

    TRL (1.16) caches the precomputed reference log-probs in a file next to the dataset's own files and reads it back
    on every rank. An in-memory dataset (``Dataset.from_dict``, ``from_list``, a tokenised ``map`` of one) has no
    files, so datasets names a per-process temporary folder: rank 0 writes the cache in its folder and rank 1 fails
    with ``FileNotFoundError`` in its own (plain `DPOTrainer` too). Under several processes such a dataset is written
    once, by the main process, to ``<output_dir>/reference_logps/<name>`` and reopened from there on every rank
    before TRL's precompute, so all ranks share one cache file (this needs the output folder on a file system all
    processes see, as checkpoints do). One process, or a dataset with files, is passed through unchanged.
    """

    def _precompute_ref_logps(self, dataset: Any, name: str, batch_size: int) -> Any:
        return super()._precompute_ref_logps(self._on_shared_disk(dataset, name), name, batch_size)  # type: ignore[misc]

    def _on_shared_disk(self, dataset: Any, name: str) -> Any:
        accelerator = self.accelerator  # type: ignore[attr-defined]
        if accelerator.num_processes == 1 or not isinstance(dataset, Dataset) or dataset.cache_files:
            return dataset
        folder = Path(self.args.output_dir) / "reference_logps" / name  # type: ignore[attr-defined]
        if accelerator.is_main_process:
            dataset.save_to_disk(str(folder))
        accelerator.wait_for_everyone()
        return load_from_disk(str(folder))


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


@dataclass
class PairLogps:
    """Per-pair summed log-probabilities of the batch TRL's ``compute_loss`` just scored (policy with its graph)."""

    chosen: Tensor
    rejected: Tensor
    ref_chosen: Tensor
    ref_rejected: Tensor

    @property
    def chosen_logratios(self) -> Tensor:
        return self.chosen - self.ref_chosen

    @property
    def rejected_logratios(self) -> Tensor:
        return self.rejected - self.ref_rejected

    @property
    def implicit_margins(self) -> Tensor:
        """``delta_i`` of the DPO loss: the chosen minus the rejected log-ratio."""
        return self.chosen_logratios - self.rejected_logratios


@dataclass
class _Recorder:
    outputs: list[Any] = field(default_factory=list)

    def __call__(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        if kwargs.get("fused_lm_head"):
            self.outputs.append(output)


def _summed(output: Any, completion_mask: Tensor) -> tuple[Tensor, Tensor]:
    # TRL's sequence log-prob: the last (L - 1) positions (prompt-learning PEFT prepends virtual tokens), summed;
    # the fused head leaves 0 where the label is masked.
    seq_len = completion_mask.shape[1] - 1
    chosen, rejected = output.log_probs[:, -seq_len:].sum(dim=1).chunk(2, dim=0)
    return chosen, rejected


@contextmanager
def recorded_pair_logps(trainer: DPOTrainer, inputs: dict[str, Any]) -> Iterator[list[PairLogps]]:
    """Around a call of TRL's ``compute_loss``: yields a list that holds its batch's `PairLogps` once it returned.

    The first fused forward is the policy's; the reference is the precomputed columns, or the second fused forward
    (a separate reference model, or the PEFT model with its adapter disabled).
    """
    recorder = _Recorder()
    modules = [module for module in (trainer.model, trainer.ref_model) if module is not None]
    handles = [module.register_forward_hook(recorder, with_kwargs=True) for module in modules]
    result: list[PairLogps] = []
    try:
        yield result
    finally:
        for handle in handles:
            handle.remove()
    expected = 1 if trainer.precompute_ref_logps else 2
    if len(recorder.outputs) != expected:
        raise RuntimeError(
            f"expected {expected} fused forward pass(es) in TRL's DPOTrainer.compute_loss, saw "
            f"{len(recorder.outputs)}: this TRL version is outside the tested range (docs/installation.md)"
        )
    chosen, rejected = _summed(recorder.outputs[0], inputs["completion_mask"])
    if trainer.precompute_ref_logps:
        ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
    else:
        ref_chosen, ref_rejected = _summed(recorder.outputs[1], inputs["completion_mask"])
    result.append(PairLogps(chosen, rejected, ref_chosen, ref_rejected))


def run_trl_loss(
    trainer: DPOTrainer, model: Any, inputs: dict[str, Any], return_outputs: bool, num_items_in_batch: Any
) -> tuple[Tensor, Any, PairLogps]:
    """TRL's own ``compute_loss`` on `inputs` (loss, outputs or None, and the per-pair log-probs it used)."""
    with recorded_pair_logps(trainer, inputs) as recorded:
        result = DPOTrainer.compute_loss(trainer, model, inputs, return_outputs, num_items_in_batch)
    loss, outputs = result if return_outputs else (result, None)
    return loss, outputs, recorded[0]


def replace_pair_term(trainer: DPOTrainer, trl_loss: Tensor, pairs: PairLogps, own_term: Tensor) -> Tensor:
    """TRL's loss with its sigmoid DPO term ``mean_i -log sigmoid(beta delta_i)`` replaced by `own_term` (a scalar).

    What else TRL's loss holds (the MoE router aux loss) is kept; the result has the value and gradient of
    ``loss_weight * own_term + rest``.
    """
    trl_term = -F.logsigmoid(trainer.beta * pairs.implicit_margins).mean()
    return trl_loss + trainer.loss_weights[0] * (own_term - trl_term)


def append_metrics(metrics: dict[str, list[float]], values: dict[str, Tensor]) -> None:
    """Append each scalar tensor to its metric list, read back to the host in one copy (one sync per step)."""
    numbers = torch.stack([value.detach().float() for value in values.values()]).tolist()
    for name, number in zip(values, numbers, strict=True):
        metrics[name].append(number)


# DPOConfig options whose non-default value the per-pair trainers cannot honour: (option, allowed, why).
UNSUPPORTED_OPTIONS: tuple[tuple[str, Any, str], ...] = (
    ("loss_type", ["sigmoid"], "the per-pair weights apply to the sigmoid DPO loss"),
    ("ld_alpha", None, "LD-DPO's length-desensitised log-probs are not reweighted"),
    ("f_divergence_type", "reverse_kl", "the per-pair term is the reverse-KL (standard DPO) loss"),
    ("use_weighting", False, "WPO's weights would multiply the per-pair weights"),
    ("label_smoothing", 0.0, "the sigmoid DPO loss does not use it (TRL ignores it too): a no-op"),
)


def check_supported(args: Any, method: str) -> None:
    """Refuse, naming the option, every `DPOConfig` setting the per-pair trainers would silently ignore.

    Everything else (``beta``, ``loss_weights``, ``router_aux_loss_coef`` and the MoE aux loss, the reference
    settings, ``precompute_ref_log_probs``, ``sync_ref_model``, truncation, ``padding_free``) runs TRL's own code;
    tests/trainers/test_madpo_drift.py compares them with TRL's `DPOTrainer` option by option.
    """
    for option, allowed, why in UNSUPPORTED_OPTIONS:
        value = getattr(args, option)
        if (list(value) if option == "loss_type" else value) != allowed:
            raise ValueError(f"{method} does not support `{option}={value!r}` (needs {allowed!r}): {why}")


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
