"""`MarginPreservingConfig`: the options of `MarginPreservingTrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from hf_margin._validation import check_choice, check_in_range, check_positive


@dataclass
class MarginPreservingConfig(TrainingArguments):
    r"""`TrainingArguments` plus the Margin Preserving Training options (Ricci et al., arXiv 2511.08322).

    Defaults are the official code's (``miccunifi/negative_flip_MPT``).

    Parameters:
        logit_bias (`float`, *optional*, defaults to `4.0`):
            Bias b added to the new classes' logits inside the cross-entropy only (0 gives plain CE).
        distillation (`str`, *optional*, defaults to `"kl"`):
            `"kl"` (MPT_KL: focal distillation with the tempered softmax KL) or `"l2"` (MPT_LM: focal L2 logit
            matching; the README's "logit-margin calibration variant" is this L2 loss in the code).
        alpha_fd (`float`, *optional*, defaults to `1.0`):
            Focal-distillation weight of every sample.
        beta_fd (`float`, *optional*, defaults to `5.0`):
            Extra focal-distillation weight of the samples the teacher classifies correctly.
        distillation_temperature (`float`, *optional*, defaults to `5.0`):
            Temperature tau of the KL variant (no tau^2 factor, as in the code).
        l2_scale (`float`, *optional*, defaults to `0.4`):
            The L2 variant's constant factor.
        distill_from_old (`bool`, *optional*, defaults to `True`):
            Keep the old-model term ``FD(z[:, old], z_old)`` (False: ablation).
        distill_from_new (`bool`, *optional*, defaults to `True`):
            Keep the new-reference term ``FD(z, z_new)`` (False: ablation; then no reference model is needed).
        evaluate_negative_flips (`bool`, *optional*, defaults to `True`):
            Without a user `compute_metrics`, evaluation reports accuracy, NFR and relative NFR against the old
            model (NFR on the old classes' samples, as the official evaluation does).
    """

    logit_bias: float = field(default=4.0, metadata={"help": "bias on the new classes' logits in the CE"})
    distillation: str = field(default="kl", metadata={"help": "focal distillation: kl or l2"})
    alpha_fd: float = field(default=1.0, metadata={"help": "focal-distillation weight of every sample"})
    beta_fd: float = field(default=5.0, metadata={"help": "extra weight where the teacher is right"})
    distillation_temperature: float = field(default=5.0, metadata={"help": "temperature of the KL variant"})
    l2_scale: float = field(default=0.4, metadata={"help": "constant factor of the L2 variant"})
    distill_from_old: bool = field(default=True, metadata={"help": "distil from the old model"})
    distill_from_new: bool = field(default=True, metadata={"help": "distil from the new reference model"})
    evaluate_negative_flips: bool = field(default=True, metadata={"help": "report NFR against the old model"})

    def __post_init__(self) -> None:
        check_choice(self.distillation, "distillation", ("kl", "l2"))
        for name in ("logit_bias", "alpha_fd", "beta_fd", "l2_scale"):
            check_in_range(getattr(self, name), name, 0.0, float("inf"))
        check_positive(self.distillation_temperature, "distillation_temperature")
        super().__post_init__()
