"""`MarginPreservingTrainer`: a class-incremental model update with fewer negative flips, under `Trainer`.

Ricci, Biondi, Pernici, Del Bimbo, "Mitigating Negative Flips via Margin Preserving Training" (arXiv 2511.08322).
The new model (C classes) is trained with

    L = CE(z + b 1_new, y) + FD(z[:, old], z_old, y) + FD(z, z_new, y)

where the old model gives C_old logits for classes 0 .. C_old - 1 (the new classes are C_old .. C - 1), the new
reference model is an independently trained C-class model, both frozen, and FD is focal distillation
(`hf_margin.functional.negative_flips`; the KL or the L2 "LM" variant). The FD terms see the unbiased logits; the
bias lives in the CE only, and inference uses the raw logits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from transformers import Trainer
from transformers.trainer_utils import PredictionOutput

from hf_margin._outputs import output_logits
from hf_margin.functional.negative_flips import (
    focal_distillation_kl,
    focal_distillation_l2,
    logit_bias_cross_entropy,
)
from hf_margin.metrics.negative_flips import negative_flip_compute_metrics
from hf_margin.trainers.margin_preserving_config import MarginPreservingConfig


class MarginPreservingTrainer(Trainer):
    """`Trainer` for MPT: margin-calibrated CE plus focal distillation from the old and a new reference model.

    The three models take the same inputs (the dataset's model columns). The teachers are frozen, kept in eval
    mode and moved to the training device; nothing of theirs is saved in checkpoints.

    Args:
        model: the new C-class model being trained (its output has ``logits``).
        args: `MarginPreservingConfig`.
        old_model: the deployed C_old-class model (C_old < C; its classes are the first C_old).
        new_reference_model: an independently trained C-class model (needed unless ``distill_from_new=False``).
        **kwargs: everything else `Trainer` takes. Without `compute_metrics`, `evaluate` (and `predict`) report
            accuracy, NFR and relative NFR against the old model on each dataset they evaluate
            (`evaluate_negative_flips`); the old model's predictions are computed once per dataset, gathered
            across processes like the evaluated predictions.

    Example:
        >>> args = MarginPreservingConfig("out", logit_bias=4.0, distillation="kl")
        >>> MarginPreservingTrainer(new_model, args, old_model=old, new_reference_model=reference,
        ...                         train_dataset=train, eval_dataset=test).train()
    """

    args: MarginPreservingConfig
    # compute_loss returns a per-batch mean: the Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        model: nn.Module,
        args: MarginPreservingConfig,
        old_model: nn.Module,
        new_reference_model: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(args, MarginPreservingConfig):
            raise TypeError(f"`args` must be a MarginPreservingConfig, got {type(args).__name__}")
        if not isinstance(old_model, nn.Module):
            raise TypeError(f"`old_model` must be the old nn.Module classifier, got {type(old_model).__name__}")
        if new_reference_model is None and args.distill_from_new:
            raise ValueError(
                "`new_reference_model` is needed unless distill_from_new=False (the no-reference ablation)"
            )
        if new_reference_model is not None and not isinstance(new_reference_model, nn.Module):
            raise TypeError(f"`new_reference_model` must be an nn.Module, got {type(new_reference_model).__name__}")
        super().__init__(model=model, args=args, **kwargs)
        self.model_accepts_loss_kwargs = False
        if "labels" not in self.label_names:  # the loss needs them (kept as a column, evaluated) whatever the forward
            self.label_names = [*self.label_names, "labels"]
        self.old_model = old_model.to(self.args.device).eval().requires_grad_(False)
        self.new_reference_model = (
            None
            if new_reference_model is None
            else new_reference_model.to(self.args.device).eval().requires_grad_(False)
        )
        self.num_old_classes: int | None = None
        # id(dataset) -> (dataset, old predictions); the dataset is kept so that its id is not reused
        self._old_predictions: dict[int, tuple[Any, Tensor]] = {}

    @torch.no_grad()
    def _teacher_logits(self, teacher: nn.Module, inputs: dict[str, Any]) -> Tensor:
        teacher.eval()  # stays in eval mode whatever was done to it since
        logits = output_logits(teacher(**inputs), "old_model" if teacher is self.old_model else "new_reference_model")
        self.num_old_classes = logits.shape[1] if teacher is self.old_model else self.num_old_classes
        return logits

    def old_model_predictions(self, dataset: Any) -> Tensor:
        """The old model's predicted classes on `dataset`, gathered from every process, in the order the Trainer
        evaluates it (that of the gathered evaluation predictions)."""
        predictions = []
        # the evaluation loader's sampler and batch size; unlike `get_eval_dataloader`, never a cached loader
        for batch in self.get_test_dataloader(dataset):
            inputs = self._prepare_inputs(batch)
            inputs.pop("labels", None)
            predicted = self._teacher_logits(self.old_model, inputs).argmax(dim=1)
            predictions.append(self.accelerator.gather_for_metrics(predicted).cpu())
        return torch.cat(predictions)

    @contextmanager
    def _negative_flip_metrics(self, dataset: Any) -> Iterator[None]:
        """Within it, `compute_metrics` reports the negative flips on `dataset` (None: the eval dataset; a str: one
        of the eval datasets), unless the user gave a `compute_metrics` or turned `evaluate_negative_flips` off."""
        resolved: Any = self.eval_dataset if dataset is None else dataset
        if isinstance(resolved, str):
            resolved = self.eval_dataset[resolved]  # type: ignore[index]  # a name: the eval datasets are a dict
        own = self.compute_metrics is None and self.args.evaluate_negative_flips
        # a dict: `Trainer.evaluate` calls `evaluate` again on each of its datasets; None: the Trainer raises
        if not own or resolved is None or isinstance(resolved, dict):
            yield
            return
        if id(resolved) not in self._old_predictions:
            self._old_predictions[id(resolved)] = (resolved, self.old_model_predictions(resolved))
        self.compute_metrics = negative_flip_compute_metrics(
            self._old_predictions[id(resolved)][1], self.num_old_classes
        )
        try:
            yield
        finally:
            self.compute_metrics = None

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        with self._negative_flip_metrics(eval_dataset):
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def predict(
        self, test_dataset: Any, ignore_keys: list[str] | None = None, metric_key_prefix: str = "test"
    ) -> PredictionOutput:
        with self._negative_flip_metrics(test_dataset):
            return super().predict(test_dataset, ignore_keys, metric_key_prefix)

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Tensor | tuple[Tensor, Any]:
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = output_logits(outputs)
        outputs = {"logits": outputs} if isinstance(outputs, Tensor) else outputs
        old_logits = self._teacher_logits(self.old_model, inputs)
        num_old = old_logits.shape[1]
        if logits.shape[1] <= num_old:
            raise ValueError(
                f"the new model must have more classes than the old one ({num_old}), got logits of "
                f"shape {tuple(logits.shape)}"
            )
        args = self.args
        loss = logit_bias_cross_entropy(logits, labels, range(num_old, logits.shape[1]), args.logit_bias)
        teachers = []
        if args.distill_from_old:
            teachers.append((logits[:, :num_old], old_logits))
        if args.distill_from_new and self.new_reference_model is not None:
            teachers.append((logits, self._teacher_logits(self.new_reference_model, inputs)))
        for student, teacher in teachers:
            if args.distillation == "kl":
                loss = loss + focal_distillation_kl(
                    student, teacher, labels, args.alpha_fd, args.beta_fd, args.distillation_temperature
                )
            else:
                loss = loss + focal_distillation_l2(
                    student, teacher, labels, args.alpha_fd, args.beta_fd, args.l2_scale
                )
        return (loss, outputs) if return_outputs else loss
