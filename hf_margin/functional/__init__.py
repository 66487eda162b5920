"""Stateless math of every method: the modules in `hf_margin.heads` and `hf_margin.losses` call these."""

from hf_margin.functional.adaptive_margin_triplet import adaptive_margin_triplet_loss
from hf_margin.functional.cosine_softmax import margin_cross_entropy, normalized_linear
from hf_margin.functional.crps import afcrps, crps, fair_crps
from hf_margin.functional.dual_head_kd import (
    align_gradients,
    aligned_backward,
    binary_kl,
    binary_kl_norm,
    softmax_kd_loss,
)
from hf_margin.functional.few_shot import (
    class_prototypes,
    icnn_loss,
    icnn_score,
    proto_triplet_loss,
    prototype_logits,
)
from hf_margin.functional.hyperspherical import hyperspherical_loss, hyperspherical_prototypes
from hf_margin.functional.ignite import dual_ascent_step, ignite_penalty_gradients, surrogate_gradient_norm
from hf_margin.functional.landmark_kd import landmark_kd_loss
from hf_margin.functional.margin_heads import (
    adaface_margin_scaler,
    adaface_target,
    arcface_loss,
    arcface_target,
    assign_sorted_margins,
    combined_target,
    cosface_loss,
    cosface_target,
    cosine_matrix,
    elastic_margins,
    margin_logits,
    margin_softmax_logits,
    margin_softmax_loss,
    margin_softmax_loss_and_cosine,
)
from hf_margin.functional.multi_similarity import multi_similarity_loss, multi_similarity_mine
from hf_margin.functional.negative_flips import (
    focal_distillation_kl,
    focal_distillation_l2,
    logit_bias_cross_entropy,
)
from hf_margin.functional.probability_margin import probability_margin_loss
from hf_margin.functional.sharded_cross_entropy import sharded_margin_cross_entropy
from hf_margin.functional.subset_fidelity import (
    component_similarity,
    optimal_compensation,
    singleton_fidelity,
    subset_fidelity,
)
from hf_margin.functional.tcm import tcm_row_losses, threshold_consistent_margin_loss
from hf_margin.functional.temperature_info_nce import info_nce_pair_losses, relative_penalty
from hf_margin.functional.unpg import box_and_whisker_mask, negative_pair_cosines, unpg_cross_entropy
from hf_margin.functional.wasserstein_robust import (
    ramp_loss,
    wasserstein_adversarial_inputs,
    wasserstein_robust_loss,
)

__all__ = [
    "adaface_margin_scaler",
    "adaface_target",
    "adaptive_margin_triplet_loss",
    "afcrps",
    "align_gradients",
    "aligned_backward",
    "arcface_loss",
    "arcface_target",
    "assign_sorted_margins",
    "binary_kl",
    "binary_kl_norm",
    "box_and_whisker_mask",
    "class_prototypes",
    "combined_target",
    "component_similarity",
    "cosface_loss",
    "cosface_target",
    "cosine_matrix",
    "crps",
    "dual_ascent_step",
    "elastic_margins",
    "fair_crps",
    "focal_distillation_kl",
    "focal_distillation_l2",
    "hyperspherical_loss",
    "hyperspherical_prototypes",
    "icnn_loss",
    "icnn_score",
    "ignite_penalty_gradients",
    "info_nce_pair_losses",
    "landmark_kd_loss",
    "logit_bias_cross_entropy",
    "margin_cross_entropy",
    "margin_logits",
    "margin_softmax_logits",
    "margin_softmax_loss",
    "margin_softmax_loss_and_cosine",
    "multi_similarity_loss",
    "multi_similarity_mine",
    "negative_pair_cosines",
    "normalized_linear",
    "optimal_compensation",
    "probability_margin_loss",
    "proto_triplet_loss",
    "prototype_logits",
    "ramp_loss",
    "relative_penalty",
    "sharded_margin_cross_entropy",
    "singleton_fidelity",
    "softmax_kd_loss",
    "subset_fidelity",
    "surrogate_gradient_norm",
    "tcm_row_losses",
    "threshold_consistent_margin_loss",
    "unpg_cross_entropy",
    "wasserstein_adversarial_inputs",
    "wasserstein_robust_loss",
]
