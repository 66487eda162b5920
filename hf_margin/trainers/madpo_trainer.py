"""`MADPOTrainer`: TRL's DPOTrainer with MADPO's per-pair weights from a reward model's margins."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor

from hf_margin._extras import require
from hf_margin.functional.preference import madpo_coefficient, madpo_weight, weighted_dpo_loss
from hf_margin.trainers._columns import ColumnCheck, check_dataset_columns
from hf_margin.trainers._model_card import (
    ModelCardMixin,
    adapter_description,
    training_hyperparameters,
)
from hf_margin.trainers._preference import (
    PairColumnsCollator,
    SharedReferenceCacheMixin,
    append_metrics,
    check_reference,
    check_supported,
    normalized_pair_surrogate,
    replace_pair_term,
    run_trl_loss,
)
from hf_margin.trainers.madpo_config import MADPOConfig

require("trl", "trl", "MADPO")

from trl import DPOTrainer  # noqa: E402


def attach_margins(dataset: Any, args: MADPOConfig, name: str = "train_dataset") -> Any:
    """The dataset with a finite reward-margin column: kept, or made from the two reward columns. Clear errors,
    including for an empty dataset (`hf_margin.trainers._columns`)."""
    if isinstance(dataset, dict):
        return {split: attach_margins(part, args, f"{name}[{split!r}]") for split, part in dataset.items()}
    if dataset is None or not hasattr(dataset, "column_names") or dataset.column_names is None:
        check_dataset_columns(dataset, "MADPOTrainer", [], name)  # an empty torch dataset; streaming: batch by batch
        return dataset
    columns = list(dataset.column_names)
    margin, chosen, rejected = args.margin_column, args.chosen_reward_column, args.rejected_reward_column
    if margin not in columns:
        if chosen not in columns or rejected not in columns:
            raise ValueError(
                f"MADPO needs a `{margin}` column (the reward model's margin of chosen over rejected, one per pair) "
                f"or the two columns `{chosen}` and `{rejected}`; the dataset has {columns}. Score the pairs with "
                "`hf_margin.data.preference_scoring.score_preference_margins`."
            )
        dataset = dataset.map(
            lambda batch: {margin: [c - r for c, r in zip(batch[chosen], batch[rejected], strict=True)]},
            batched=True,
            desc="MADPO margins",
        )
    check_dataset_columns(dataset, "MADPOTrainer", [ColumnCheck(margin, "number")], name)
    return dataset


class MADPOTrainer(SharedReferenceCacheMixin, ModelCardMixin, DPOTrainer):
    """Trainer for MADPO: DPO whose per-pair loss is weighted by a function of a reward model's margin.

    ``loss = mean_i -w(h_i) log sigmoid(beta h_theta_i)`` with ``h_i`` from the dataset's margin column and
    ``w`` from `MADPOConfig` (paper: Rho, "Margin-Adaptive Direct Preference Optimization", arXiv 2510.05342).
    Everything else is TRL's `DPOTrainer`, run as TRL's own code (tokenisation, the fused LM head, the reference
    from precomputed log-probs, a reference model or the PEFT model with its adapter disabled, ``loss_weights``,
    the MoE router aux loss, every metric): the trainer calls TRL's ``compute_loss`` and swaps only its sigmoid DPO
    term for the weighted one (`hf_margin.trainers._preference`). With ``c_max = c_min = 1`` the loss, gradients
    and metrics equal TRL's (tests/trainers/test_madpo_drift.py); the `DPOConfig` options it cannot honour
    (`check_supported`) are refused when it is built. The margin column is kept through TRL's column filter and
    collator; the margins get no gradient.

    Logged (through the trainer's metrics, so TensorBoard / W&B get them): ``madpo/weight_mean``, ``_min``,
    ``_max``, ``madpo/amplified`` and ``madpo/damped`` (shares of pairs with w > 1 and w < 1),
    ``madpo/target_margin`` (mean effective target c(|h|) h) and ``madpo/reward_margin``, besides all of TRL's
    (``rewards/*``, ``logps/*``, ``logits/*``, ``entropy``, ``num_tokens``, ``mean_token_accuracy``, ``aux_loss``).

    Saving (`save_model`, checkpoints, `push_to_hub`) writes the filled `madpo_policy` model card as README.md
    (`hf_margin.trainers._model_card`); name the reward model with ``trainer.model_card_values["reward_model"]``.

    Example:
        >>> dataset = score_preference_margins(pairs, reward_model, reward_tokenizer)   # adds "margin"
        >>> trainer = MADPOTrainer(model, args=MADPOConfig("out"), train_dataset=dataset,
        ...                        processing_class=tokenizer, peft_config=LoraConfig(...))
        >>> trainer.train()
    """

    _tag_names = ["trl", "dpo", "madpo", "hf_margin"]  # noqa: RUF012 (TRL's attribute)
    _name = "MADPO"
    card_template = "madpo_policy"

    def __init__(
        self,
        model: Any,
        ref_model: Any = None,
        args: MADPOConfig | None = None,
        data_collator: Any = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
            args = MADPOConfig(f"{str(name).split('/')[-1] or 'model'}-MADPO")
        if not isinstance(args, MADPOConfig):
            raise TypeError(f"`args` must be a MADPOConfig, got {type(args).__name__}")
        check_supported(args, "MADPO")
        check_reference(model, ref_model, kwargs.get("peft_config"), args, "MADPO")
        super().__init__(
            model,
            ref_model=ref_model,
            args=args,
            data_collator=data_collator,
            train_dataset=attach_margins(train_dataset, args),
            eval_dataset=attach_margins(eval_dataset, args, "eval_dataset"),
            processing_class=processing_class,
            **kwargs,
        )
        # Swapped after TRL's __init__, whose reference precompute feeds collator output straight to the model.
        self.data_collator = PairColumnsCollator(self.data_collator, (args.margin_column,))

    @property
    def madpo_args(self) -> MADPOConfig:
        return cast(MADPOConfig, self.args)

    def card_values(self) -> dict[str, Any]:
        """The `madpo_policy` card's fields: the weight function's parameters, the adapter and the data."""
        args = self.madpo_args
        return {
            "reward_model": f"not recorded (the margins came with the data, column `{args.margin_column}`)",
            "beta": args.beta,
            "c_max": args.c_max,
            "c_min": args.c_min,
            "madpo_lambda": args.madpo_lambda,
            "tau": args.tau,
            "adapter": adapter_description(self.model),
            "hyperparameters": {
                "beta": args.beta,
                "normalized_pair_gradient": args.normalized_pair_gradient,
                **training_hyperparameters(args, self.state.global_step),
            },
        }

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        columns = cast(list[str], self._signature_columns)
        if self.madpo_args.margin_column not in columns:
            columns.append(self.madpo_args.margin_column)

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> tuple[Tensor, Tensor]:
        inputs = {k: v for k, v in inputs.items() if k != self.madpo_args.margin_column}
        return super().compute_ref_log_probs(model, inputs)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Tensor | tuple[Tensor, Any]:
        """TRL's `DPOTrainer.compute_loss` (forward, reference, MoE aux loss, every metric) with its sigmoid DPO
        term replaced by MADPO's weighted one (`hf_margin.trainers._preference`)."""
        args = self.madpo_args
        margins = inputs[args.margin_column]
        trl_inputs = {k: v for k, v in inputs.items() if k != args.margin_column}
        trl_loss, outputs, pairs = run_trl_loss(self, model, trl_inputs, return_outputs, num_items_in_batch)
        if margins.shape != pairs.chosen.shape:
            raise ValueError(
                f"`{args.margin_column}` has shape {tuple(margins.shape)} for {pairs.chosen.shape[0]} pairs"
            )
        weights = madpo_weight(margins, args.c_max, args.c_min, args.madpo_lambda, args.tau).to(pairs.chosen)
        madpo_term = weighted_dpo_loss(pairs.chosen_logratios, pairs.rejected_logratios, weights, self.beta).mean()
        if args.normalized_pair_gradient and model.training:
            margin = pairs.implicit_margins.detach()
            slopes = weights * self.beta * torch.sigmoid(-self.beta * margin) / margin.numel()
            trainable = [p for p in model.parameters() if p.requires_grad]
            madpo_term = normalized_pair_surrogate(madpo_term, pairs.chosen, pairs.rejected, slopes, trainable)
        loss = replace_pair_term(self, trl_loss, pairs, madpo_term)
        self._log_weights(margins.to(pairs.chosen), weights)
        return (loss, outputs) if return_outputs else loss

    def _log_weights(self, margins: Tensor, weights: Tensor) -> None:
        args = self.madpo_args
        metrics = self._metrics["train" if self.model is not None and self.model.training else "eval"]
        gathered_weights, gathered_margins = self.accelerator.gather(weights), self.accelerator.gather(margins)
        target = madpo_coefficient(gathered_margins.abs(), args.c_max, args.c_min, args.madpo_lambda, args.tau)
        append_metrics(
            metrics,
            {
                "madpo/weight_mean": gathered_weights.mean(),
                "madpo/weight_min": gathered_weights.min(),
                "madpo/weight_max": gathered_weights.max(),
                "madpo/amplified": (gathered_weights > 1).float().mean(),
                "madpo/damped": (gathered_weights < 1).float().mean(),
                "madpo/target_margin": (target * gathered_margins).mean(),
                "madpo/reward_margin": gathered_margins.mean(),
            },
        )
