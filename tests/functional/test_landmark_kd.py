"""KD-Loss for landmarks: the assistive and main losses against a case-by-case scalar reference (beyond the
teacher / between band and teacher / inside the band), the spec's properties (P = G gives L_main = 0, continuity
at |G - P| = d, zero inside the band, reflection invariance, the push flips direction between the regions),
gradcheck away from the switching points, errors."""

from __future__ import annotations

import pytest
import torch

from hf_margin.functional.landmark_kd import assistive_loss, landmark_kd_loss, landmark_main_loss


def reference_aloss(p: float, g: float, t: float, alpha: float, alpha_minus: float, band: float = 0.15) -> float:
    """One coordinate's ALoss by cases: the student's distance from G against the teacher's."""
    reach, gap = abs(t - g), abs(p - g)
    if gap > reach:
        return alpha * (gap - reach)  # beyond the (reflected) teacher
    if gap >= band * reach:
        return alpha_minus * (reach - gap)  # between the band and the teacher
    return 0.0  # inside the band next to G


def reference_main(p: float, g: float, t_tolerant: float) -> float:
    error, d = abs(g - p), abs(g - t_tolerant)
    return 3 * error if error <= d else error**2 + 3 * d - d**2


def landmarks(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    truth = torch.rand(4, 10, generator=g, dtype=torch.float64)
    student, tough, tolerant = (truth + 0.2 * torch.randn(4, 10, generator=g, dtype=torch.float64) for _ in range(3))
    return student, truth, tough, tolerant


def test_matches_the_case_by_case_reference() -> None:
    p, g, tough, tolerant = landmarks()
    flat = [x.flatten().tolist() for x in (p, g, tough, tolerant)]
    cases = list(zip(*flat, strict=True))
    expected_tough = sum(reference_aloss(a, b, c, 1.9, -0.45) for a, b, c, _ in cases) / len(cases)
    expected_tolerant = sum(reference_aloss(a, b, d, 1.8, -0.4) for a, b, _, d in cases) / len(cases)
    expected_main = sum(reference_main(a, b, d) for a, b, _, d in cases) / len(cases)
    assert float(assistive_loss(p, g, tough, 1.9, -0.45)) == pytest.approx(expected_tough)
    assert float(landmark_main_loss(p, g, tolerant)) == pytest.approx(expected_main)
    total = landmark_kd_loss(p, g, tough, tolerant)
    assert float(total) == pytest.approx(2 * expected_main + expected_tough + expected_tolerant)
    kinds = {
        ("beyond" if abs(a - b) > abs(c - b) else "between" if abs(a - b) >= 0.15 * abs(c - b) else "band")
        for a, b, c, _ in cases
    }
    assert kinds == {"beyond", "between", "band"}, "the random batch covers all three regions"


def test_main_loss_is_zero_at_the_truth_and_continuous_at_the_switch() -> None:
    _, g, _, tolerant = landmarks(1)
    assert landmark_main_loss(g, g, tolerant) == 0
    d = (g - tolerant).abs()
    below, above = landmark_main_loss(g + d - 1e-9, g, tolerant), landmark_main_loss(g + d + 1e-9, g, tolerant)
    assert abs(float(above - below)) < 1e-7


def test_zero_inside_the_band_and_reflection_invariant() -> None:
    g, t = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    inside = torch.tensor([0.1, -0.1, 0.149, -0.01], dtype=torch.float64)
    assert assistive_loss(inside, g, t, 1.9, -0.45) == 0
    p, truth, tough, tolerant = landmarks(2)
    mirrored_tough, mirrored_tolerant = 2 * truth - tough, 2 * truth - tolerant
    torch.testing.assert_close(
        landmark_kd_loss(p, truth, mirrored_tough, mirrored_tolerant), landmark_kd_loss(p, truth, tough, tolerant)
    )


def test_push_flips_between_beyond_and_between() -> None:
    g, t = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    for start, towards_teacher in ((2.0, True), (0.5, False), (-2.0, True), (-0.5, False)):
        p = torch.tensor([start], dtype=torch.float64, requires_grad=True)
        assistive_loss(p, g, t, 1.9, -0.45).backward()
        step = -float(p.grad)  # gradient-descent direction
        reflected = 1.0 if start > 0 else -1.0
        assert (step * (reflected - start) > 0) == towards_teacher, start
    between = torch.tensor([0.5], dtype=torch.float64)
    assert assistive_loss(between, g, t, 1.9, -0.45) < 0, "the between region's weight is negative"


def test_gradcheck_away_from_switching_points() -> None:
    p, g, tough, tolerant = landmarks(3)
    gap = (p - g).abs()
    reaches = [(tough - g).abs(), (tolerant - g).abs()]
    edges = torch.stack([gap - r for r in reaches] + [gap - 0.15 * r for r in reaches])
    assert edges.abs().min() > 1e-4, "no coordinate sits on a switching point"
    p.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: landmark_kd_loss(x, g, tough, tolerant), (p,))


def test_extremes_and_teachers_get_no_gradient() -> None:
    p, g, tough, tolerant = landmarks(4)
    p = (p * 1e6).requires_grad_(True)
    tough.requires_grad_(True)
    loss = landmark_kd_loss(p, g, tough, tolerant)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(p.grad).all() and tough.grad is None
    same = landmark_kd_loss(g, g, g, g)
    assert same == 0


def test_errors_name_the_argument() -> None:
    p, g, tough, tolerant = landmarks()
    with pytest.raises(ValueError, match="`tough_teacher`"):
        landmark_kd_loss(p, g, tough[:, :4], tolerant)
    with pytest.raises(ValueError, match="`ground_truth`"):
        landmark_main_loss(p, g.T, tolerant)
    with pytest.raises(TypeError, match="`predictions`"):
        assistive_loss(p.long(), g, tough, 1.9, -0.45)
    with pytest.raises(ValueError, match="`band`"):
        assistive_loss(p, g, tough, 1.9, -0.45, band=1.5)


def test_shape_checks_are_the_distillation_ones() -> None:
    """The same shape check (and message) as the logit distillation losses, for landmarks of any rank."""
    from hf_margin.functional.negative_flips import focal_distillation_l2

    p, g, tough, tolerant = landmarks()
    with pytest.raises(ValueError, match=r"`teacher` must have the shape of `predictions` \(4, 10\), got \(4, 9\)"):
        assistive_loss(p, g, tough[:, :9], 1.9, -0.45)
    with pytest.raises(
        ValueError,
        match=r"`teacher_logits` must have the shape of `student_logits` \(4, 10\), got "
        r"\(4, 9\)",
    ):
        focal_distillation_l2(p, tough[:, :9], torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`predictions` is empty"):
        landmark_main_loss(p[:0], g[:0], tolerant[:0])
    three_d = p.reshape(4, 5, 2)
    torch.testing.assert_close(
        landmark_main_loss(three_d, g.reshape(4, 5, 2), tolerant.reshape(4, 5, 2)), landmark_main_loss(p, g, tolerant)
    )
