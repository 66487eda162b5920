"""`RobustSelfTrainer`: RSS training, a robust loss on labelled rows plus lambda times it on pseudo-labelled ones.

Paper: "Out-Of-Domain Unlabeled Data Improves Generalization" (Saberi, Najafi, Heidari, Movasaghinia, Motahari,
Khalaj; ICLR 2024; arXiv 2310.00027). The RSS estimator minimises

    (1/m) sum_i phi_gamma(x_i, y_i; theta) + (lambda/n) sum_j phi_gamma'(x'_j, h_theta(x'_j); theta),

with phi_gamma(x, y) = sup_z l(z, y) - gamma ||z - x||^2 (`hf_margin.functional.wasserstein_robust_loss`, inner
ascent as Sinha et al., arXiv 1710.10571) and h_theta(x') the model's own prediction on an unlabelled, possibly
out-of-domain row. Labelled and unlabelled rows share one training set: an unlabelled row has label -100
(`UNLABELED`, the transformers ignore index). Each batch's loss is the mean of phi over its labelled rows plus
lambda times the mean over its unlabelled rows (a term with no row in the batch counts 0).

The paper's algorithm box was not read (spec: papers-missing.md §4); these choices are ours: pseudo-labels are
the current model's predictions on the clean rows, under stop-gradient, recomputed at every step; a warm start
trains on the labelled rows only for `rss_warmup_steps` steps (lambda = 0); the cost is squared Euclidean on the
model input named `rss_input_name` (a text model's input embeddings when it is ``inputs_embeds``);
`rss_labeled_share` fixes the share of labelled rows per batch (otherwise batches are drawn at random).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import Trainer, TrainingArguments

from hf_margin._outputs import output_logits
from hf_margin._precision import at_least_float32
from hf_margin._validation import check_choice, check_in_range, check_number_in_range, check_positive_number
from hf_margin.data.samplers import PositiveShareSampler
from hf_margin.functional.wasserstein_robust import ramp_loss, wasserstein_robust_loss

UNLABELED = -100
LOSSES = ("cross_entropy", "ramp")


@dataclass
class RobustSelfTrainingConfig(TrainingArguments):
    r"""`TrainingArguments` plus RSS's robust self-training (arXiv 2310.00027). The paper's values of gamma, gamma'
    and lambda were not read: the defaults are ours.

    Parameters:
        rss_gamma (`float`, *optional*, defaults to `1.0`):
            gamma of the labelled term's robust loss, >= 0; `inf` is the plain (non-robust) loss.
        rss_gamma_unlabeled (`float`, *optional*, defaults to `None`):
            gamma' of the pseudo-labelled term, >= 0 (`inf`: non-robust); None uses `rss_gamma`.
        rss_lambda (`float`, *optional*, defaults to `1.0`):
            Weight lambda >= 0 of the pseudo-labelled term; 0 is supervised (robust) training.
        rss_steps (`int`, *optional*, defaults to `15`):
            Gradient-ascent steps of the inner maximisation (0: the plain loss).
        rss_step_size (`float`, *optional*, defaults to `None`):
            Ascent step, capped at 1 / (2 gamma); None uses 1 / (2 gamma).
        rss_loss (`str`, *optional*, defaults to `"cross_entropy"`):
            Per-row loss l: `"cross_entropy"` on the logits, or `"ramp"` (the poster's
            ``min(1, max(0, 1 - s y f))`` on a single score per row, labels 0/1).
        rss_ramp_scale (`float`, *optional*, defaults to `1.0`):
            Slope s of the ramp loss.
        rss_input_name (`str`, *optional*, defaults to `"inputs_embeds"`):
            The model input that the adversary moves: a feature column, or ``inputs_embeds`` (computed from
            ``input_ids`` with the model's input embeddings when the batch has no ``inputs_embeds``).
        rss_warmup_steps (`int`, *optional*, defaults to `0`):
            First optimizer steps with lambda = 0 (the warm start on the labelled rows).
        rss_labeled_share (`float`, *optional*, defaults to `None`):
            Share of labelled rows in every training batch, in (0, 1); None draws batches at random.
    """

    rss_gamma: float = field(default=1.0, metadata={"help": "gamma of the labelled term (inf: non-robust)"})
    rss_gamma_unlabeled: float | None = field(default=None, metadata={"help": "gamma' (None: rss_gamma)"})
    rss_lambda: float = field(default=1.0, metadata={"help": "weight of the pseudo-labelled term"})
    rss_steps: int = field(default=15, metadata={"help": "inner gradient-ascent steps"})
    rss_step_size: float | None = field(default=None, metadata={"help": "ascent step (None: 1 / (2 gamma))"})
    rss_loss: str = field(default="cross_entropy", metadata={"help": "'cross_entropy' or 'ramp'"})
    rss_ramp_scale: float = field(default=1.0, metadata={"help": "slope of the ramp loss"})
    rss_input_name: str = field(default="inputs_embeds", metadata={"help": "model input the adversary moves"})
    rss_warmup_steps: int = field(default=0, metadata={"help": "steps with lambda = 0 (warm start)"})
    rss_labeled_share: float | None = field(default=None, metadata={"help": "share of labelled rows per batch"})

    def __post_init__(self) -> None:
        check_number_in_range(self.rss_gamma, "rss_gamma", 0.0, math.inf)
        if self.rss_gamma_unlabeled is not None:
            check_number_in_range(self.rss_gamma_unlabeled, "rss_gamma_unlabeled", 0.0, math.inf)
        check_number_in_range(self.rss_lambda, "rss_lambda", 0.0, math.inf)
        if math.isinf(self.rss_lambda):
            raise ValueError(f"`rss_lambda` must be finite, got {self.rss_lambda}")
        for name in ("rss_steps", "rss_warmup_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}")
        if self.rss_step_size is not None:
            check_positive_number(self.rss_step_size, "rss_step_size")
        elif self.rss_steps > 0 and 0.0 in (self.rss_gamma, self.gamma_unlabeled):
            raise ValueError("`rss_step_size` must be given when a gamma is 0 (1 / (2 gamma) is infinite)")
        check_choice(self.rss_loss, "rss_loss", LOSSES)
        check_positive_number(self.rss_ramp_scale, "rss_ramp_scale")
        if not isinstance(self.rss_input_name, str) or not self.rss_input_name:
            raise ValueError(f"`rss_input_name` must be a model input's name, got {self.rss_input_name!r}")
        if self.rss_labeled_share is not None:
            check_in_range(self.rss_labeled_share, "rss_labeled_share", 1e-9, 1 - 1e-9)
        super().__post_init__()

    @property
    def gamma_unlabeled(self) -> float:
        """gamma' of the pseudo-labelled term (`rss_gamma` when not set)."""
        return self.rss_gamma if self.rss_gamma_unlabeled is None else self.rss_gamma_unlabeled


def pseudo_labels(logits: Tensor, loss: str) -> Tensor:
    """h_theta(x): the predicted class (argmax of the logits; for the ramp's single score, 1 where it is > 0)."""
    if loss == "ramp":
        return (logits.detach().reshape(len(logits)) > 0).long()
    return logits.detach().argmax(dim=-1)


class RobustSelfTrainer(Trainer):
    """`Trainer` minimising RSS's robust loss on labelled rows plus lambda times it on pseudo-labelled rows.

    Paper: "Out-Of-Domain Unlabeled Data Improves Generalization" (arXiv 2310.00027). Formula per batch:
    ``mean_{labelled} phi_gamma(x, y) + lambda * mean_{unlabelled} phi_gamma'(x', h_theta(x'))``, phi from
    `wasserstein_robust_loss` (Danskin gradient at the inner ascent's z*).

    Args:
        model: a model whose output has ``logits`` (one column per class; one score per row for the ramp loss) and
            that takes the input `args.rss_input_name`; its rows must not interact (no BatchNorm in train mode).
        args: `RobustSelfTrainingConfig`.
        **kwargs: everything else `Trainer` takes; the training set's ``labels`` are class ids for labelled rows
            and `UNLABELED` (-100) for unlabelled ones.

    Example:
        >>> args = RobustSelfTrainingConfig("out", rss_gamma=2.0, rss_lambda=1.0, rss_input_name="features")
        >>> RobustSelfTrainer(model, args, train_dataset=labelled_and_unlabelled).train()
    """

    def __init__(self, model: nn.Module, args: RobustSelfTrainingConfig, **kwargs: Any) -> None:
        if not isinstance(args, RobustSelfTrainingConfig):
            raise TypeError(f"`args` must be a RobustSelfTrainingConfig, got {type(args).__name__}")
        super().__init__(model=model, args=args, **kwargs)
        # phi is a per-batch mean: let the Trainer divide it by the accumulation steps.
        self.model_accepts_loss_kwargs = False

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        args: Any = self.args
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        if args.rss_labeled_share is None or dataset is None:
            return super()._get_train_sampler(train_dataset)
        labeled = [int(label != UNLABELED) for label in dataset["labels"]]
        return PositiveShareSampler(labeled, self.args.train_batch_size, args.rss_labeled_share, self.args.seed)

    def _split_input(self, model: nn.Module, inputs: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """The input the adversary moves and the model's other inputs."""
        args: Any = self.args
        name = str(args.rss_input_name)
        if name == "inputs_embeds" and name not in inputs and "input_ids" in inputs:
            embeddings = self.accelerator.unwrap_model(model).get_input_embeddings()
            inputs[name] = embeddings(inputs.pop("input_ids"))
        if name not in inputs:
            raise ValueError(f"`rss_input_name` {name!r} is not among the batch's inputs {sorted(inputs)}")
        points = inputs.pop(name)
        if not isinstance(points, Tensor) or not points.is_floating_point():
            raise ValueError(f"the input {name!r} (`rss_input_name`) must be a floating tensor, got {type(points)}")
        return points, inputs

    def _row_losses(self, logits: Tensor, labels: Tensor) -> Tensor:
        args: Any = self.args
        if args.rss_loss == "ramp":
            return ramp_loss(logits.reshape(len(logits)), labels, scale=args.rss_ramp_scale, reduction="none")
        return F.cross_entropy(at_least_float32(logits), labels, reduction="none")

    def _gamma(self, labeled: Tensor) -> float | Tensor:
        """gamma on labelled rows and gamma' on the others: one float when they are equal, else one per row."""
        args: Any = self.args
        if args.rss_gamma == args.gamma_unlabeled:
            return float(args.rss_gamma)
        values = torch.tensor([float(args.gamma_unlabeled), float(args.rss_gamma)], device=labeled.device)
        return values[labeled.long()]

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Tensor | tuple[Tensor, Any]:
        args: Any = self.args
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        points, rest = self._split_input(model, inputs)
        name = args.rss_input_name

        def logits_at(z: Tensor) -> Tensor:
            return output_logits(model(**rest, **{name: z}))

        labeled = labels != UNLABELED
        with torch.no_grad():
            guesses = pseudo_labels(logits_at(points), args.rss_loss)
        targets = torch.where(labeled, labels, guesses)
        phi = wasserstein_robust_loss(
            lambda z, y: self._row_losses(logits_at(z), y),
            points,
            targets,
            self._gamma(labeled),
            steps=0 if math.isinf(args.rss_gamma) and math.isinf(args.gamma_unlabeled) else args.rss_steps,
            step_size=args.rss_step_size,
            reduction="none",
        )
        weight = 0.0 if self.state.global_step < args.rss_warmup_steps else float(args.rss_lambda)
        labeled_f = labeled.to(phi.dtype)
        unlabeled_f = 1.0 - labeled_f
        # Means over each kind of row without a host sync (a kind absent from the batch adds 0).
        loss = (phi * labeled_f).sum() / labeled_f.sum().clamp_min(1.0)
        if weight > 0:
            loss = loss + weight * (phi * unlabeled_f).sum() / unlabeled_f.sum().clamp_min(1.0)
        if return_outputs:
            return loss, {"logits": logits_at(points)}
        return loss
