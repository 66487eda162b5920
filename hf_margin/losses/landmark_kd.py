"""KD-Loss module for landmark regression with Tough and Tolerant teachers (Fard & Mahoor, arXiv 2111.07047);
math in `hf_margin.functional.landmark_kd`."""

from __future__ import annotations

from torch import Tensor, nn

from hf_margin.functional.landmark_kd import check_landmark_kd_options, landmark_kd_loss


class LandmarkKDLoss(nn.Module):
    """KD-Loss ``w_main L_main + w_tough ALoss_tough + w_tolerant ALoss_tolerant`` for keypoint students.

    Facial Landmark Points Detection Using Knowledge Distillation-Based Neural Networks (arXiv 2111.07047): the
    assistive losses pull the student towards each teacher where it overshoots it and push it past the teacher,
    towards the ground truth, where it lies between the teacher and a band near the ground truth (formulas and
    defaults of the official code, see the functional module).

    Args:
        main_weight, tough_weight, tolerant_weight: weights of L_main and the two ALosses (2, 1, 1).
        alpha_tough, alpha_minus_tough: the Tough teacher's ALoss weights (1.9, -0.45).
        alpha_tolerant, alpha_minus_tolerant: the Tolerant teacher's ALoss weights (1.8, -0.4).
        band: the no-loss band next to the ground truth, as a share of |teacher - ground truth| (0.15).

    Example:
        >>> loss = LandmarkKDLoss()
        >>> loss(student(images), landmarks, tough(images).detach(), tolerant(images).detach()).backward()
    """

    def __init__(
        self,
        main_weight: float = 2.0,
        tough_weight: float = 1.0,
        tolerant_weight: float = 1.0,
        alpha_tough: float = 1.9,
        alpha_minus_tough: float = -0.45,
        alpha_tolerant: float = 1.8,
        alpha_minus_tolerant: float = -0.4,
        band: float = 0.15,
    ) -> None:
        super().__init__()
        self.options = {
            "main_weight": main_weight,
            "tough_weight": tough_weight,
            "tolerant_weight": tolerant_weight,
            "alpha_tough": alpha_tough,
            "alpha_minus_tough": alpha_minus_tough,
            "alpha_tolerant": alpha_tolerant,
            "alpha_minus_tolerant": alpha_minus_tolerant,
            "band": band,
        }
        check_landmark_kd_options(**self.options)

    def forward(
        self, predictions: Tensor, ground_truth: Tensor, tough_teacher: Tensor, tolerant_teacher: Tensor
    ) -> Tensor:
        return landmark_kd_loss(predictions, ground_truth, tough_teacher, tolerant_teacher, **self.options)
