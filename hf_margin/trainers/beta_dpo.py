"""beta-DPO as the MADPO authors' baseline implements it: a batch-level beta and beta-guided filtering.

Wu et al., "beta-DPO: Direct Preference Optimization with Dynamic beta", arXiv 2407.08639. Departure from that
baseline: its statistics are taken over the whole accumulated batch with the policy in eval mode; here they are
taken per micro-batch from the training forward (no second forward pass).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch.nn.functional as F
from torch import Tensor

from hf_margin._extras import require
from hf_margin.functional.preference import BetaDPOState
from hf_margin.trainers._preference import (
    SharedReferenceCacheMixin,
    append_metrics,
    check_supported,
    replace_pair_term,
    run_trl_loss,
)

require("trl", "trl", "beta-DPO")

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

STATE_FILE = "beta_dpo_state.json"


@dataclass
class BetaDPOConfig(DPOConfig):
    r"""Configuration of [`BetaDPOTrainer`]: TRL's `DPOConfig` (its `beta` is beta0) plus beta-DPO's options.

    Args:
        beta_dpo_alpha (`float`, *optional*, defaults to `0.6`):
            Sensitivity of the batch beta to the batch's mean implicit margin.
        beta_dpo_momentum (`float`, *optional*, defaults to `0.9`):
            Momentum of the EMAs of the margin statistics.
        beta_dpo_keep (`float`, *optional*, defaults to `0.8`):
            Share of each batch's pairs kept by the beta-guided filter (1 keeps all).
    """

    beta_dpo_alpha: float = field(default=0.6, metadata={"help": "Sensitivity of beta to the batch margin."})
    beta_dpo_momentum: float = field(default=0.9, metadata={"help": "EMA momentum of the margin statistics."})
    beta_dpo_keep: float = field(default=0.8, metadata={"help": "Share of pairs kept by the filter."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.beta_dpo_keep <= 1:
            raise ValueError(f"`beta_dpo_keep` must lie in (0, 1], got {self.beta_dpo_keep}")
        if not 0 <= self.beta_dpo_momentum < 1:
            raise ValueError(f"`beta_dpo_momentum` must lie in [0, 1), got {self.beta_dpo_momentum}")


class BetaDPOTrainer(SharedReferenceCacheMixin, DPOTrainer):
    """Sigmoid DPO with a per-batch beta and beta-guided filtering; the EMA statistics are saved in checkpoints.

    With ``beta_dpo_alpha = 0`` and ``beta_dpo_keep = 1`` it is TRL's sigmoid DPO. Everything but the per-pair
    term is TRL's own code at run time (see `MADPOTrainer`). Logged: ``beta_dpo/beta``, ``beta_dpo/centre``,
    ``beta_dpo/scale``, ``beta_dpo/kept`` and all of TRL's metrics (its ``rewards/*`` with the configured beta).

    A baseline, kept simple: the statistics are taken per micro-batch and, under several processes, per process
    (not gathered); each process keeps its own moving averages and filter draws, and checkpoints hold rank 0's.
    """

    _tag_names = ["trl", "dpo", "beta-dpo", "hf_margin"]  # noqa: RUF012 (TRL's attribute)
    _name = "beta-DPO"

    def __init__(self, model: Any, *args: Any, **kwargs: Any) -> None:
        config = kwargs.get("args")
        if not isinstance(config, BetaDPOConfig):
            raise TypeError(f"`args` must be a BetaDPOConfig, got {type(config).__name__}")
        check_supported(config, "beta-DPO")
        super().__init__(model, *args, **kwargs)
        self.beta_dpo_state = BetaDPOState()

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Tensor | tuple[Tensor, Any]:
        """TRL's `DPOTrainer.compute_loss` (forward, reference, MoE aux loss, every metric; TRL's ``rewards/*`` use
        the configured beta0) with its sigmoid DPO term replaced by beta-DPO's (`hf_margin.trainers._preference`)."""
        args = cast(BetaDPOConfig, self.args)
        trl_loss, outputs, pairs = run_trl_loss(self, model, inputs, return_outputs, num_items_in_batch)
        margins = pairs.implicit_margins
        training = self.model is not None and self.model.training
        if training:
            beta, keep = self.beta_dpo_state.step(
                margins, self.beta, args.beta_dpo_alpha, args.beta_dpo_momentum, args.beta_dpo_keep
            )
            keep = keep.to(margins)
        else:
            beta, keep = self.beta, margins.new_ones(margins.shape)
        beta_dpo_term = (-F.logsigmoid(beta * margins) * keep).sum() / keep.sum()
        loss = replace_pair_term(self, trl_loss, pairs, beta_dpo_term)
        append_metrics(
            self._metrics["train" if training else "eval"],
            {
                "beta_dpo/beta": margins.new_tensor(beta),
                "beta_dpo/centre": margins.new_tensor(self.beta_dpo_state.centre),
                "beta_dpo/scale": margins.new_tensor(self.beta_dpo_state.scale),
                "beta_dpo/kept": keep.mean(),
            },
        )
        return (loss, outputs) if return_outputs else loss

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if not self.args.should_save:  # one writer (the main process, or one per node with save_on_each_node)
            return
        folder = Path(self._get_output_dir(trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        (folder / STATE_FILE).write_text(json.dumps(asdict(self.beta_dpo_state)))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = Path(resume_from_checkpoint) / STATE_FILE
        if path.is_file():
            self.beta_dpo_state = BetaDPOState(**json.loads(path.read_text()))
