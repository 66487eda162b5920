"""`IGNITETrainer`: a transformers `Trainer` whose model is trained under IGNITE's surrogate gradient-norm constraint.

Paper: "IGNITE: Incorporating Surrogate Gradient Norm to Improve Offline Optimization" (Dao, Nguyen, Truong,
Hoang; arXiv 2503.04242). The model's own loss L(beta) is trained subject to rho * ||grad_beta G_B(beta)|| <=
epsilon, with G_B the batch mean of the model's outputs (``logits``); every micro-batch adds
lambda * (rho / r) * (grad G_B(beta + r u) - grad G_B(beta)) to the gradients (see
`hf_margin.functional.ignite.ignite_penalty_gradients`) and then takes the dual step
lambda <- max(0, lambda + eta * (rho ||grad G_B|| - epsilon)). The official code does not clamp lambda at zero;
``ignite_clamp_multiplier=False`` reproduces it. ``ignite_update_multiplier=False`` is IGNITE-2 (a fixed lambda).

Own choices (not in the code, which trains one batch per step): under gradient accumulation the penalty gradient
is divided by the accumulation steps like the loss, and the dual step runs once per micro-batch; G_B is computed on
the same inputs as the loss (the official code computes L on noise-corrupted inputs and G_B on the clean ones).
The multiplier is saved with the Trainer state (``ignite_multiplier.json`` in each checkpoint) and restored on
resume.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hf_margin._outputs import output_logits
from hf_margin._validation import check_positive
from hf_margin.functional.ignite import dual_ascent_step, ignite_penalty_gradients

MULTIPLIER_NAME = "ignite_multiplier.json"


@dataclass
class IGNITEConfig(TrainingArguments):
    r"""`TrainingArguments` plus IGNITE's constraint (defaults: the official IGNITE scripts).

    Parameters:
        ignite_epsilon (`float`, *optional*, defaults to `0.1`):
            Constraint level epsilon on rho * ||grad G_B||.
        ignite_multiplier_init (`float`, *optional*, defaults to `0.001`):
            Initial Lagrange multiplier lambda_0 (IGNITE-2 uses a fixed 0.01).
        ignite_multiplier_lr (`float`, *optional*, defaults to `0.001`):
            Dual step size eta.
        ignite_rho (`float`, *optional*, defaults to `0.05`):
            Weight rho of the constraint (IGNITE-2: 0.2).
        ignite_radius (`float`, *optional*, defaults to `0.05`):
            Finite-difference step r (IGNITE-2: 0.2).
        ignite_update_multiplier (`bool`, *optional*, defaults to `True`):
            Take the dual step; False keeps lambda fixed (IGNITE-2).
        ignite_clamp_multiplier (`bool`, *optional*, defaults to `True`):
            Keep lambda >= 0 (the official code does not).
    """

    ignite_epsilon: float = field(default=0.1, metadata={"help": "constraint level epsilon"})
    ignite_multiplier_init: float = field(default=0.001, metadata={"help": "initial Lagrange multiplier"})
    ignite_multiplier_lr: float = field(default=0.001, metadata={"help": "dual step size"})
    ignite_rho: float = field(default=0.05, metadata={"help": "weight rho of the gradient-norm constraint"})
    ignite_radius: float = field(default=0.05, metadata={"help": "finite-difference step r"})
    ignite_update_multiplier: bool = field(default=True, metadata={"help": "dual ascent on lambda (False: IGNITE-2)"})
    ignite_clamp_multiplier: bool = field(default=True, metadata={"help": "project lambda onto lambda >= 0"})

    def __post_init__(self) -> None:
        for name in ("ignite_rho", "ignite_radius", "ignite_multiplier_lr"):
            check_positive(getattr(self, name), name)
        if not self.ignite_epsilon >= 0:
            raise ValueError(f"`ignite_epsilon` must be a number >= 0, got {self.ignite_epsilon}")
        if self.ignite_clamp_multiplier and not self.ignite_multiplier_init >= 0:
            raise ValueError(f"`ignite_multiplier_init` must be >= 0 when clamped, got {self.ignite_multiplier_init}")
        super().__post_init__()


class IGNITETrainer(Trainer):
    """`Trainer` that adds IGNITE's gradient-norm constraint on the batch-mean prediction to the model's own loss.

    Paper: IGNITE (arXiv 2503.04242). Formula: grad = grad L + lambda * rho * grad ||grad_beta mean_B g_beta(x)||
    (finite difference), lambda <- max(0, lambda + eta * (rho ||grad G_B|| - epsilon)).

    Args:
        model: a model whose output has ``logits`` (the surrogate's predictions) and a ``loss`` when given labels.
        args: `IGNITEConfig`.
        **kwargs: everything else `Trainer` takes.

    Attributes:
        multiplier: the current lambda. last_gradient_norm: ||grad G_B|| of the last micro-batch.

    Example:
        >>> args = IGNITEConfig("out", max_steps=100, ignite_epsilon=0.1)
        >>> IGNITETrainer(model, args, train_dataset=rows).train()
    """

    def __init__(self, model: nn.Module, args: IGNITEConfig, **kwargs: Any) -> None:
        if not isinstance(args, IGNITEConfig):
            raise TypeError(f"`args` must be an IGNITEConfig, got {type(args).__name__}")
        if args.world_size > 1:
            raise NotImplementedError(
                f"IGNITETrainer runs on one process, got world_size={args.world_size}: its penalty gradient and "
                "multiplier come from each process's own batch, so the processes would drift apart (launch it with "
                "one process)"
            )
        super().__init__(model=model, args=args, **kwargs)
        self.multiplier = float(args.ignite_multiplier_init)
        self.last_gradient_norm = float("nan")

    def _mean_prediction(self, model: nn.Module, inputs: dict[str, Any]) -> Tensor:
        features = {k: v for k, v in inputs.items() if k not in self.label_names}
        return output_logits(model(**features)).float().mean()

    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        args: Any = self.args
        if self.multiplier == 0 and not args.ignite_update_multiplier:
            return loss  # lambda fixed at zero: plain training
        prepared = self._prepare_inputs(inputs)
        params = [p for p in model.parameters() if p.requires_grad]
        norm, grads = ignite_penalty_gradients(
            lambda: self._mean_prediction(model, prepared), params, rho=args.ignite_rho, radius=args.ignite_radius
        )
        scale = self.multiplier / args.gradient_accumulation_steps
        if scale != 0:
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.grad = g * scale if p.grad is None else p.grad.add_(g, alpha=scale)
        self.last_gradient_norm = float(norm)
        if args.ignite_update_multiplier:
            self.multiplier = dual_ascent_step(
                self.multiplier,
                self.last_gradient_norm,
                rho=args.ignite_rho,
                epsilon=args.ignite_epsilon,
                learning_rate=args.ignite_multiplier_lr,
                clamp=args.ignite_clamp_multiplier,
            )
        return loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs:
            logs = {**logs, "ignite_multiplier": self.multiplier, "ignite_gradient_norm": self.last_gradient_norm}
        super().log(logs, *args, **kwargs)

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if not self.args.should_save:  # one writer (the main process, or one per node with save_on_each_node)
            return
        folder = os.path.join(self._get_output_dir(trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        with open(os.path.join(folder, MULTIPLIER_NAME), "w") as handle:
            json.dump({"multiplier": self.multiplier}, handle)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, MULTIPLIER_NAME)
        if os.path.isfile(path):
            with open(path) as handle:
                self.multiplier = float(json.load(handle)["multiplier"])
