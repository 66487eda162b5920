"""Configuration of `MADPOTrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field

from hf_margin._extras import require
from hf_margin.functional.preference import DEFAULT_TAU, check_madpo_parameters

require("trl", "trl", "MADPO")

from trl import DPOConfig  # noqa: E402


@dataclass
class MADPOConfig(DPOConfig):
    r"""Configuration of [`MADPOTrainer`]: TRL's `DPOConfig` plus MADPO's weight function.

    MADPO (Rho, "Margin-Adaptive Direct Preference Optimization", arXiv 2510.05342) weights each pair's sigmoid
    DPO loss by ``w(h) = sigmoid(c(|h|) h) / sigmoid(h)`` (1 for ``h <= -tau``), where ``h`` is a reward model's
    margin of the chosen over the rejected response. Defaults are the official notebook's.

    > Parameters that control the weights

    Args:
        margin_column (`str`, *optional*, defaults to `"margin"`):
            Dataset column with the reward margin ``r(chosen) - r(rejected)`` of each pair (see
            `hf_margin.data.preference_scoring.score_preference_margins`).
        chosen_reward_column (`str`, *optional*, defaults to `"chosen_reward"`):
            Used with `rejected_reward_column` when the dataset has the two rewards instead of the margin.
        rejected_reward_column (`str`, *optional*, defaults to `"rejected_reward"`):
            See `chosen_reward_column`.
        c_max (`float`, *optional*, defaults to `2.0`):
            Largest amplification of the target margin (for small reward margins).
        c_min (`float`, *optional*, defaults to `0.5`):
            Strongest damping (for reward margins well past `tau`). `c_max = c_min = 1` is plain DPO.
        madpo_lambda (`float`, *optional*, defaults to `1.0`):
            Steepness of the transition of c from `c_max` to `c_min`.
        tau (`float`, *optional*, defaults to `ln(999) = 6.9068`):
            The reward margin at which c = 1 (99.9% Bradley-Terry confidence); pairs whose reward margin is below
            `-tau` keep weight 1.
        normalized_pair_gradient (`bool`, *optional*, defaults to `False`):
            Train along ``grad L_w / |grad L_w| - grad L_l / |grad L_l|`` (rescaled to the usual gradient's length)
            instead of the loss gradient, so that to first order log p(chosen) rises and log p(rejected) falls.
            Derived from the gradient-entanglement analysis of Yuan et al. (arXiv 2410.13828), whose exact update
            is not published; costs two extra backward passes per step.
    """

    margin_column: str = field(default="margin", metadata={"help": "Column with the reward margin of each pair."})
    chosen_reward_column: str = field(
        default="chosen_reward", metadata={"help": "Column with the chosen response's reward (if no margin column)."}
    )
    rejected_reward_column: str = field(
        default="rejected_reward",
        metadata={"help": "Column with the rejected response's reward (if no margin column)."},
    )
    c_max: float = field(default=2.0, metadata={"help": "Largest amplification of the target margin."})
    c_min: float = field(default=0.5, metadata={"help": "Strongest damping of the target margin."})
    madpo_lambda: float = field(default=1.0, metadata={"help": "Steepness of c's transition."})
    tau: float = field(default=DEFAULT_TAU, metadata={"help": "Reward margin where c = 1."})
    normalized_pair_gradient: bool = field(
        default=False,
        metadata={
            "help": "Train along the normalised-pair direction (derived from arXiv 2410.13828; 2 extra backwards)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_madpo_parameters(self.c_max, self.c_min, self.madpo_lambda, self.tau)
