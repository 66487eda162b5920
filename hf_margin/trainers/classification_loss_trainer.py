"""`ClassificationLossTrainer`: any catalogue loss on any classifier under the transformers `Trainer`.

The model is anything whose output has ``logits`` (``*ForSequenceClassification``, ``*ForImageClassification``,
a custom module returning a dict); the loss is any module called as ``loss(logits, labels, ...)``:
`FocalLoss`, `LDAMLoss`, `LDRKLLoss`, `ALDRKLLoss`, `AUCMarginLoss`, `AnyLoss`, `CompSumLoss`, `ZLoss`, ... The
trainer also

- passes a per-example weight column (``sample_weight``, e.g. DatasetEquity's weights) to losses that take
  ``sample_weight``, and an example-index column (``index``) to losses that take ``indices`` (ALDR-KL);
- trains the loss's own parameters (AUC-M's a, b and alpha) in an extra optimizer parameter group without
  weight decay, and saves the loss's state (parameters and buffers: AUC-M's a, b, alpha; ALDR-KL's lambdas) as
  ``loss_state.pt`` in every checkpoint, restoring it on resume;
- optionally samples batches with a fixed share of positives (`positive_share`; LibAUC's DualSampler idea).

Under several processes (DDP, FSDP), the loss's parameters get their gradients averaged over the processes like
the model's, and its per-example buffers (``per_example_buffers``: ALDR-KL's lambdas) are shared after every
training batch, so every process holds the state one process on the whole batch would.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hf_margin._outputs import output_logits
from hf_margin._validation import check_in_range
from hf_margin.data.samplers import PositiveShareSampler

LOSS_STATE_NAME = "loss_state.pt"


@dataclass
class ClassificationLossArguments(TrainingArguments):
    r"""`TrainingArguments` plus the columns and sampling of `ClassificationLossTrainer`.

    Parameters:
        sample_weight_column (`str`, *optional*, defaults to `"sample_weight"`):
            Per-example weight column, passed as ``sample_weight`` to losses that accept it (ignored if absent).
        index_column (`str`, *optional*, defaults to `"index"`):
            Example-index column, passed as ``indices`` to losses that need it (ALDR-KL's per-example lambdas).
        positive_share (`float`, *optional*):
            Binary tasks: every training batch holds this share of positives (rare positives are oversampled);
            None keeps the Trainer's random sampler.
    """

    sample_weight_column: str = field(default="sample_weight", metadata={"help": "per-example weight column"})
    index_column: str = field(default="index", metadata={"help": "example-index column (ALDR-KL)"})
    positive_share: float | None = field(default=None, metadata={"help": "share of positives per batch"})

    def __post_init__(self) -> None:
        if self.positive_share is not None:
            check_in_range(self.positive_share, "positive_share", 1e-9, 1 - 1e-9)
        super().__post_init__()


def _accepts(loss: nn.Module, name: str) -> bool:
    return name in inspect.signature(loss.forward).parameters


def _average_over_processes(parameter: Tensor) -> None:
    """Average a loss parameter's gradient over the processes (a sum, then a division: gloo has no average), as
    DDP and FSDP do for the model's: each process would otherwise train its own copy (AUC-M's a, b, alpha). Run
    after every backward, also under gradient accumulation: the part already averaged is the same everywhere."""
    if parameter.grad is None or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    dist.all_reduce(parameter.grad)
    parameter.grad.div_(dist.get_world_size())


class ClassificationLossTrainer(Trainer):
    """`Trainer` whose loss is a catalogue loss module applied to the model's logits.

    Args:
        model: a classifier whose output has ``logits``.
        args: `ClassificationLossArguments` (plain `TrainingArguments` work when the defaults suit).
        loss: the loss module, called as ``loss(logits, labels[, sample_weight=...][, indices=...])``.
        **kwargs: everything else `Trainer` takes.

    Example:
        >>> loss = FocalLoss(gamma=2.0, class_counts=counts, beta=0.9999)
        >>> ClassificationLossTrainer(model, args, loss=loss, train_dataset=train).train()
    """

    def __init__(
        self, model: nn.Module, args: TrainingArguments | None = None, loss: nn.Module | None = None, **kwargs: Any
    ) -> None:
        if not isinstance(loss, nn.Module):
            raise TypeError(f"`loss` must be an nn.Module called as loss(logits, labels), got {type(loss).__name__}")
        self.loss = loss
        super().__init__(model=model, args=args, **kwargs)
        self.loss.to(self.args.device)
        for parameter in self.loss.parameters():
            if parameter.requires_grad:  # outside the wrapped model: DDP / FSDP would not average its gradient
                parameter.register_post_accumulate_grad_hook(_average_over_processes)
        # Every catalogue loss is a per-batch value: let the Trainer divide it by the accumulation steps.
        self.model_accepts_loss_kwargs = False

    def _option(self, name: str, default: str) -> str:
        return str(getattr(self.args, name, default))

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        columns = self._signature_columns
        assert columns is not None
        for name, default in (("sample_weight_column", "sample_weight"), ("index_column", "index")):
            if self._option(name, default) not in columns:
                columns.append(self._option(name, default))

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        share = getattr(self.args, "positive_share", None)
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        if share is None or dataset is None:
            return super()._get_train_sampler(train_dataset)
        columns: list[str] = dataset.column_names
        label_column = next((c for c in ("labels", "label") if c in columns), None)
        if label_column is None:
            raise ValueError(f"positive_share needs a 'labels' or 'label' column; the dataset has {columns}")
        return PositiveShareSampler(dataset[label_column], self.args.train_batch_size, share, self.args.seed)

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model)
        extra = [p for p in self.loss.parameters() if p.requires_grad]
        known = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if extra and not known.intersection(map(id, extra)):
            optimizer.add_param_group({"params": extra, "weight_decay": 0.0})
            # Trainer zeroes only the model's gradients; the loss's are cleared (and, where the loss has a
            # constraint such as AUC-M's alpha >= 0, projected) after every optimizer step.
            optimizer.register_step_post_hook(self._after_optimizer_step)
        return optimizer

    def _after_optimizer_step(self, *_: Any) -> None:
        self.loss.zero_grad(set_to_none=True)
        project = getattr(self.loss, "project_", None)
        if callable(project):
            project()

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Tensor | tuple[Tensor, Any]:
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        extras: dict[str, Tensor] = {}
        weight = inputs.pop(self._option("sample_weight_column", "sample_weight"), None)
        index = inputs.pop(self._option("index_column", "index"), None)
        if weight is not None:
            if not _accepts(self.loss, "sample_weight"):
                raise ValueError(
                    f"the dataset has a per-example weight column but {type(self.loss).__name__} "
                    "takes no `sample_weight`"
                )
            extras["sample_weight"] = weight
        if _accepts(self.loss, "indices"):
            if index is None:
                raise ValueError(
                    f"{type(self.loss).__name__} needs example indices: add an "
                    f"{self._option('index_column', 'index')!r} column (e.g. the row number)"
                )
            extras["indices"] = index
        outputs = model(**inputs)
        loss = self.loss(output_logits(outputs), labels, **extras)
        if model.training and "indices" in extras:
            self._share_per_example_state(extras["indices"])
        return (loss, outputs) if return_outputs else loss

    def _share_per_example_state(self, indices: Tensor) -> None:
        """Under several processes, copy every process's updates of the loss's per-example buffers (the names in
        ``loss.per_example_buffers``, e.g. ALDR-KL's lambdas) into every process: each process updates only the
        rows of its own batch, and the checkpoint (written by the main process) must hold them all."""
        names = getattr(self.loss, "per_example_buffers", ())
        if self.accelerator.num_processes == 1 or not names:
            return
        gathered = self.accelerator.gather(self.accelerator.pad_across_processes(indices, pad_index=-1))
        kept = gathered >= 0  # a shorter batch on one process is padded with index -1
        for name in names:
            buffer = getattr(self.loss, name)
            values = self.accelerator.gather(self.accelerator.pad_across_processes(buffer[indices.to(buffer.device)]))
            buffer[gathered[kept].to(buffer.device)] = values[kept].to(buffer.dtype)

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = os.path.join(
                self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            torch.save(self.loss.state_dict(), os.path.join(folder, LOSS_STATE_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, LOSS_STATE_NAME)
        if os.path.isfile(path):
            self.loss.load_state_dict(torch.load(path, map_location=self.args.device, weights_only=True))
