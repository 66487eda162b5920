"""Verification metrics against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_margin.metrics import pair_scores, roc_curve, tar_at_far, verification_accuracy

metrics = pytest.importorskip("sklearn.metrics")


def test_pair_scores_cover_every_unordered_pair() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    scores, same = pair_scores(x, torch.tensor([0, 1, 0]))
    np.testing.assert_allclose(scores, [0.0, 1.0, 0.0], atol=1e-7)  # pairs (0,1), (0,2), (1,2)
    assert same.tolist() == [False, True, False]


def test_roc_curve_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    scores, same = rng.normal(size=500), rng.random(500) < 0.3
    scores[same] += 1.0
    far, tar = roc_curve(scores, same)
    reference_far, reference_tar, _ = metrics.roc_curve(same, scores, drop_intermediate=False)
    assert np.trapezoid(tar, far) == pytest.approx(metrics.roc_auc_score(same, scores), abs=1e-12)
    assert far[-1] == 1.0 and tar[-1] == 1.0
    np.testing.assert_allclose(far, reference_far)  # no tied scores: one point per threshold, as sklearn
    np.testing.assert_allclose(tar, reference_tar)


def test_tar_at_far_by_hand() -> None:
    impostor = np.linspace(0.0, 0.99, 100)  # 100 impostor scores
    genuine = np.array([0.5, 0.975, 0.985, 0.995])
    scores = np.concatenate([impostor, genuine])
    same = np.concatenate([np.zeros(100, bool), np.ones(4, bool)])
    # FAR 1%: one impostor (0.99) may pass, so the threshold is the 2nd highest impostor (0.98).
    assert tar_at_far(scores, same, 0.01) == pytest.approx(0.5)
    assert tar_at_far(scores, same, 0.0) == pytest.approx(0.25)  # above 0.99 only
    assert tar_at_far(scores, same, 1.0) == pytest.approx(1.0)


def test_verification_accuracy_perfect_and_chance() -> None:
    same = np.array([True] * 50 + [False] * 200)
    separated = np.where(same, 0.9, 0.1) + np.linspace(0, 0.01, 250)
    assert verification_accuracy(separated, same) == (1.0, 0.0)
    rng = np.random.default_rng(1)
    noise = rng.random(250)
    mean, _ = verification_accuracy(noise, same)
    assert 0.3 < mean < 0.7


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="need both genuine and impostor pairs"):
        tar_at_far(np.array([0.1, 0.2]), np.array([True, True]))
    with pytest.raises(ValueError, match="1-D of equal length"):
        roc_curve(np.array([0.1, 0.2]), np.array([True]))
    with pytest.raises(ValueError, match="`far` must lie in"):
        tar_at_far(np.array([0.1, 0.2]), np.array([True, False]), far=2.0)
    with pytest.raises(ValueError, match=r"`labels` must have shape \(3,\)"):
        pair_scores(torch.randn(3, 2), torch.tensor([0, 1]))


def test_pair_scores_are_float32_and_labels_integer() -> None:
    x = torch.randn(6, 4, dtype=torch.float64)
    scores, same = pair_scores(x, torch.tensor([0, 1, 0, 1, 2, 2]))
    assert scores.dtype == np.float32 and scores.shape == same.shape == (15,)
    with pytest.raises(TypeError, match="`labels`"):
        pair_scores(x, torch.tensor([0.0, 1.0, 0.0, 1.0, 2.0, 2.0]))
