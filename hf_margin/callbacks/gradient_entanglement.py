"""`GradientEntanglementCallback`: gradient-entanglement statistics during DPO-family training."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from hf_margin.diagnostics.gradient_entanglement import (
    CASES,
    RECORDS_FILE,
    entanglement,
    pair_gradients,
    per_pair_entanglement,
    select_parameters,
    sequence_logps,
)

_BATCH_KEYS = ("input_ids", "attention_mask", "completion_mask")


class GradientEntanglementCallback(TrainerCallback):
    """Measure gradient entanglement every `every_n_steps` optimizer steps of a TRL preference trainer.

    Works with trainers whose collator puts the chosen sequences in the first half of the batch and the rejected
    in the second, with a ``completion_mask`` (TRL's `DPOTrainer` in the tested range for every `loss_type`,
    hf_margin's `MADPOTrainer` and `BetaDPOTrainer`). On a measured step it takes the step's first micro-batch, computes
    (model in eval mode, no graph kept) the gradients of the summed chosen and rejected log-probabilities over
    `params`, and after the optimizer step the observed change of those log-probabilities on the same batch.
    With `eval_batch` it also measures every pair of that fixed batch and the change of its log-probs since the
    previous measurement. Every measurement is appended to ``<output_dir>/gradient_entanglement.jsonl`` (one
    ``"kind": "batch"`` record, and one ``"kind": "pair"`` record per eval pair), which `plot_entanglement` and
    ``hf-margin plot-entanglement`` draw.

    Metrics go into the trainer's own metrics (so they are logged to TensorBoard / W&B with the loss):
    ``ge/inner``, ``ge/cosine``, ``ge/norm_chosen``, ``ge/norm_rejected``, ``ge/condition`` (inner product over
    the smaller squared norm; < 1 is the ideal case), ``ge/ideal|both_down|both_up|degenerate`` (case indicator,
    or shares on the eval pairs: ``ge/eval_*``; "degenerate" is a zero or non-finite gradient, whose condition and
    cosine are NaN: undefined, never counted as ideal), ``ge/dlogp_chosen`` / ``ge/dlogp_rejected`` (observed
    changes) and ``ge/seconds`` (the measurement's cost).

    Args:
        trainer: the trainer to watch (its `training_step` is wrapped to see the batch).
        every_n_steps: measure every this many optimizer steps.
        params: ``"trainable"`` (default; the LoRA weights under PEFT), ``"all"``, or name substrings.
        eval_batch: a collated preference batch (e.g. ``trainer.data_collator(examples)``) measured per pair.
        output_dir: where the per-pair records go (default: the trainer's output_dir).

    Example:
        >>> trainer = MADPOTrainer(...)
        >>> trainer.add_callback(GradientEntanglementCallback(trainer, every_n_steps=10))
    """

    def __init__(
        self,
        trainer: Any,
        every_n_steps: int = 10,
        params: str | Sequence[str] = "trainable",
        eval_batch: dict[str, torch.Tensor] | None = None,
        output_dir: str | Path | None = None,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"`every_n_steps` must be >= 1, got {every_n_steps}")
        if eval_batch is not None and any(k not in eval_batch for k in _BATCH_KEYS):
            raise ValueError(f"`eval_batch` must be a collated preference batch with keys {_BATCH_KEYS}")
        self.trainer = trainer
        self.every_n_steps = every_n_steps
        self.params = params
        self.eval_batch = eval_batch
        self.records = Path(output_dir or trainer.args.output_dir) / RECORDS_FILE
        self._pending: dict[str, Any] | None = None
        self._previous_eval: tuple[torch.Tensor, torch.Tensor] | None = None
        original = trainer.training_step

        def training_step(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            if self._pending is None and (trainer.state.global_step + 1) % self.every_n_steps == 0:
                self._measure_before(model, inputs)
            return original(model, inputs, *args, **kwargs)

        trainer.training_step = training_step

    def _parameters(self, model: Any) -> list[torch.nn.Parameter]:
        return [p for _, p in select_parameters(model, self.params)]

    def _measure_before(self, model: Any, inputs: dict[str, Any]) -> None:
        start = time.perf_counter()
        batch = {k: inputs[k] for k in _BATCH_KEYS}
        was_training = model.training
        model.eval()
        grad_chosen, grad_rejected, chosen, rejected = pair_gradients(model, batch, self._parameters(model))
        model.train(was_training)
        self._pending = {
            "batch": batch,
            "stats": entanglement(grad_chosen, grad_rejected),
            "chosen": chosen,
            "rejected": rejected,
            "seconds": time.perf_counter() - start,
        }

    @torch.no_grad()
    def _logps(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        was_training = model.training
        model.eval()
        logps = sequence_logps(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
        model.train(was_training)
        chosen, rejected = logps.chunk(2)
        return chosen, rejected

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        start = time.perf_counter()
        chosen, rejected = self._logps(model, pending["batch"])
        stats = pending["stats"]
        metrics = self.trainer._metrics["train"]
        for key in ("inner", "cosine", "norm_chosen", "norm_rejected", "condition"):
            metrics[f"ge/{key}"].append(getattr(stats, key))
        for case in CASES:
            metrics[f"ge/{case}"].append(float(stats.case == case))
        dlogp_chosen, dlogp_rejected = (
            float((chosen - pending["chosen"]).mean()),
            float((rejected - pending["rejected"]).mean()),
        )
        metrics["ge/dlogp_chosen"].append(dlogp_chosen)
        metrics["ge/dlogp_rejected"].append(dlogp_rejected)
        self._write(
            [
                {
                    "kind": "batch",
                    "step": state.global_step,
                    **stats.as_dict(),
                    "dlogp_chosen": dlogp_chosen,
                    "dlogp_rejected": dlogp_rejected,
                }
            ]
        )
        if self.eval_batch is not None:
            self._measure_eval(model, state.global_step, metrics)
        metrics["ge/seconds"].append(pending["seconds"] + time.perf_counter() - start)

    def _measure_eval(self, model: Any, step: int, metrics: Any) -> None:
        assert self.eval_batch is not None
        batch = {k: v.to(model.device) for k, v in self.eval_batch.items() if k in _BATCH_KEYS}
        was_training = model.training
        model.eval()
        pairs = per_pair_entanglement(model, batch, self._parameters(model))
        model.train(was_training)
        chosen, rejected = self._logps(model, batch)
        for case in CASES:
            metrics[f"ge/eval_{case}"].append(sum(p.case == case for p in pairs) / len(pairs))
        metrics["ge/eval_cosine"].append(sum(p.cosine for p in pairs) / len(pairs))
        if self._previous_eval is not None:
            metrics["ge/eval_dlogp_chosen"].append(float((chosen - self._previous_eval[0]).mean()))
            metrics["ge/eval_dlogp_rejected"].append(float((rejected - self._previous_eval[1]).mean()))
        self._previous_eval = (chosen, rejected)
        self._write(
            [
                {
                    "kind": "pair",
                    "step": step,
                    "pair": index,
                    **pair.as_dict(),
                    "logp_chosen": float(chosen[index]),
                    "logp_rejected": float(rejected[index]),
                }
                for index, pair in enumerate(pairs)
            ]
        )

    def _write(self, records: list[dict[str, Any]]) -> None:
        self.records.parent.mkdir(parents=True, exist_ok=True)
        with self.records.open("a") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in records)
