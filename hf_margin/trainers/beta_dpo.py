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
from hf_margin.trainers._preference import check_supported, log_dpo_metrics, sequence_logps

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


class BetaDPOTrainer(DPOTrainer):
    """Sigmoid DPO with a per-batch beta and beta-guided filtering; the EMA statistics are saved in checkpoints.

    With ``beta_dpo_alpha = 0`` and ``beta_dpo_keep = 1`` it is TRL's sigmoid DPO. Logged: ``beta_dpo/beta``,
    ``beta_dpo/centre``, ``beta_dpo/scale``, ``beta_dpo/kept`` and TRL's ``rewards/*``, ``logps/*``.

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
        args = cast(BetaDPOConfig, self.args)
        chosen, rejected, ref_chosen, ref_rejected = sequence_logps(self, model, inputs, set())
        chosen_logratios, rejected_logratios = chosen - ref_chosen, rejected - ref_rejected
        margins = chosen_logratios - rejected_logratios
        training = self.model is not None and self.model.training
        if training:
            beta, keep = self.beta_dpo_state.step(
                margins, self.beta, args.beta_dpo_alpha, args.beta_dpo_momentum, args.beta_dpo_keep
            )
            keep = keep.to(margins)
        else:
            beta, keep = self.beta, margins.new_ones(margins.shape)
        loss = (-F.logsigmoid(beta * margins) * keep).sum() / keep.sum()
        log_dpo_metrics(self, chosen, rejected, chosen_logratios, rejected_logratios, beta)
        metrics = self._metrics["train" if training else "eval"]
        metrics["beta_dpo/beta"].append(beta)
        metrics["beta_dpo/centre"].append(self.beta_dpo_state.centre)
        metrics["beta_dpo/scale"].append(self.beta_dpo_state.scale)
        metrics["beta_dpo/kept"].append(keep.mean().item())
        if return_outputs:
            return loss, model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        return loss

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
