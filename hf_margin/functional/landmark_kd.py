"""KD-Loss for landmark regression with a Tough and a Tolerant teacher.

Fard, Mahoor, "Facial Landmark Points Detection Using Knowledge Distillation-Based Neural Networks" (arXiv
2111.07047, CVIU 2022). A student P is trained against the ground truth G and two teachers T: the Tough teacher
(trained on the real landmarks) and the Tolerant one (trained on smoothed, ASM "soft" landmarks). Per coordinate:

- the teacher reflected to the student's side of G: ``T' = G + sign(P - G) |T - G|``, and a band near G:
  ``B = G + sign(P - G) 0.15 |T - G|``;
- weight ``w = alpha 1[sign(P - T') sign(T' - G) > 0] + alpha_minus 1[sign(T' - P) sign(P - B) >= 0]``: alpha
  where the student is beyond the teacher, alpha_minus < 0 (pushing it past the teacher towards G) where it lies
  between B and T', 0 inside the band;
- assistive loss ``ALoss_T = mean(w |T' - P|)``;
- main loss, with ``d = |G - T_tol|``: ``mean(1[|G-P| <= d] 3|G-P| + 1[|G-P| > d] ((G-P)^2 + 3d - d^2))``
  (continuous at |G - P| = d);
- ``KD-Loss = w_main L_main + w_tough ALoss_tough + w_tolerant ALoss_tolerant``.

These are the official TensorFlow code's formulas (``aliprf/KD-Loss``, ``Custom_losses.kd_loss``) with its defaults
(alpha_tough = 1.9, alpha_minus_tough = -0.45, alpha_tolerant = 1.8, alpha_minus_tolerant = -0.4, w_main = 2,
w_tough = w_tolerant = 1); the paper's own notation was not available. The loss is piecewise: it is
non-differentiable where P crosses G, B, T' or |G - P| = d.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_number_in_range
from hf_margin.functional._distillation import check_same_shape


def assistive_loss(
    predictions: Tensor,
    ground_truth: Tensor,
    teacher: Tensor,
    alpha: float,
    alpha_minus: float,
    band: float = 0.15,
) -> Tensor:
    """One teacher's ALoss ``mean(w |T' - P|)`` (see the module docstring), over every coordinate.

    Args:
        predictions: student landmarks P, any shape (e.g. (batch, 2 x points)).
        ground_truth: G, the shape of `predictions`.
        teacher: that teacher's landmarks T, the shape of `predictions` (no gradient flows to it).
        alpha: weight where the student is beyond the teacher (1.9 tough, 1.8 tolerant).
        alpha_minus: weight where it lies between the band and the teacher (-0.45 tough, -0.4 tolerant).
        band: share of |T - G| next to G where the loss is 0 (0.15).

    Example:
        >>> assistive_loss(student(x), landmarks, tough_teacher(x).detach(), alpha=1.9, alpha_minus=-0.45)
    """
    check_same_shape(predictions, "predictions", ground_truth=ground_truth, teacher=teacher)
    check_number_in_range(band, "band", 0.0, 1.0)
    p = at_least_float32(predictions)
    g, t = ground_truth.to(p), teacher.detach().to(p)
    side = torch.sign(p - g).detach()
    distance = (t - g).abs()
    reflected = g + side * distance
    near = g + side * band * distance
    beyond = torch.sign(p - reflected) * torch.sign(reflected - g) > 0
    between = torch.sign(reflected - p) * torch.sign(p - near) >= 0
    weight = alpha * beyond.to(p) + alpha_minus * between.to(p)
    return (weight * (reflected - p).abs()).mean()


def landmark_main_loss(predictions: Tensor, ground_truth: Tensor, tolerant_teacher: Tensor) -> Tensor:
    """``mean(1[|G-P| <= d] 3|G-P| + 1[|G-P| > d] ((G-P)^2 + 3d - d^2))`` with ``d = |G - T_tolerant|``."""
    check_same_shape(predictions, "predictions", ground_truth=ground_truth, tolerant_teacher=tolerant_teacher)
    p = at_least_float32(predictions)
    error = (ground_truth.to(p) - p).abs()
    d = (ground_truth.to(p) - tolerant_teacher.detach().to(p)).abs()
    return torch.where(error <= d, 3 * error, error.square() + 3 * d - d.square()).mean()


def check_landmark_kd_options(
    main_weight: float,
    tough_weight: float,
    tolerant_weight: float,
    alpha_tough: float,
    alpha_minus_tough: float,
    alpha_tolerant: float,
    alpha_minus_tolerant: float,
    band: float,
) -> None:
    """Check KD-Loss's settings (`LandmarkKDLoss` when built, :func:`landmark_kd_loss` on every call): weights
    >= 0, ALoss weights finite (either sign), band in [0, 1]."""
    weights = {"main_weight": main_weight, "tough_weight": tough_weight, "tolerant_weight": tolerant_weight}
    for name, weight in weights.items():
        check_number_in_range(weight, name, 0.0, math.inf)
    alphas = {
        "alpha_tough": alpha_tough,
        "alpha_minus_tough": alpha_minus_tough,
        "alpha_tolerant": alpha_tolerant,
        "alpha_minus_tolerant": alpha_minus_tolerant,
    }
    for name, alpha in alphas.items():
        check_number_in_range(alpha, name, -math.inf, math.inf)
        if not math.isfinite(alpha):
            raise ValueError(f"`{name}` must be a finite number, got {alpha!r}")
    check_number_in_range(band, "band", 0.0, 1.0)


def landmark_kd_loss(
    predictions: Tensor,
    ground_truth: Tensor,
    tough_teacher: Tensor,
    tolerant_teacher: Tensor,
    main_weight: float = 2.0,
    tough_weight: float = 1.0,
    tolerant_weight: float = 1.0,
    alpha_tough: float = 1.9,
    alpha_minus_tough: float = -0.45,
    alpha_tolerant: float = 1.8,
    alpha_minus_tolerant: float = -0.4,
    band: float = 0.15,
) -> Tensor:
    """KD-Loss ``w_main L_main + w_tough ALoss_tough + w_tolerant ALoss_tolerant`` (official-code defaults).

    Args:
        predictions: student landmarks P (any shape; normalised coordinates in the paper).
        ground_truth: G, the shape of `predictions`.
        tough_teacher: the Tough teacher's predictions (trained on the real landmarks).
        tolerant_teacher: the Tolerant teacher's predictions (trained on the soft landmarks); sets L_main's d.
        main_weight, tough_weight, tolerant_weight: the three terms' weights (2, 1, 1).
        alpha_tough, alpha_minus_tough, alpha_tolerant, alpha_minus_tolerant: the ALoss weights.
        band: the no-loss band next to G, as a share of |T - G| (0.15).

    Example:
        >>> landmark_kd_loss(student(x), landmarks, tough(x).detach(), tolerant(x).detach())
    """
    check_landmark_kd_options(
        main_weight,
        tough_weight,
        tolerant_weight,
        alpha_tough,
        alpha_minus_tough,
        alpha_tolerant,
        alpha_minus_tolerant,
        band,
    )
    check_same_shape(
        predictions,
        "predictions",
        ground_truth=ground_truth,
        tough_teacher=tough_teacher,
        tolerant_teacher=tolerant_teacher,
    )
    main = landmark_main_loss(predictions, ground_truth, tolerant_teacher)
    tough = assistive_loss(predictions, ground_truth, tough_teacher, alpha_tough, alpha_minus_tough, band)
    tolerant = assistive_loss(predictions, ground_truth, tolerant_teacher, alpha_tolerant, alpha_minus_tolerant, band)
    return main_weight * main + tough_weight * tough + tolerant_weight * tolerant
