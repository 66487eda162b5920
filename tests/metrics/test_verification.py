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


def test_torch_tensors_give_the_numpy_figures(device: str) -> None:
    # issue 19 item 5: tensors (any device, requiring grad) crashed verification_accuracy and tar_at_far
    rng = np.random.default_rng(0)
    same = np.arange(60) % 3 == 0
    scores = np.where(same, 0.6, 0.3) + rng.normal(0, 0.2, 60)
    as_tensor = torch.tensor(scores, device=device, requires_grad=True)
    same_tensor = torch.tensor(same, device=device)
    assert verification_accuracy(as_tensor, same_tensor, folds=5) == verification_accuracy(scores, same, folds=5)
    assert tar_at_far(as_tensor, same_tensor, 0.1) == tar_at_far(scores, same, 0.1)
    for got, expected in zip(roc_curve(as_tensor, same_tensor), roc_curve(scores, same), strict=True):
        np.testing.assert_array_equal(got, expected)
    # 0/1 integer labels read as booleans (not as fancy indices, which silently gave wrong figures)
    assert tar_at_far(scores, same.astype(int), 0.1) == tar_at_far(scores, same, 0.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"folds": 0}, ValueError, "`folds` must be an integer >= 1, got 0"),
        ({"folds": 3.0}, TypeError, "`folds` must be an int, got float"),
        ({"folds": "3"}, TypeError, "`folds` must be an int, got str"),
        ({"balance": "yes"}, TypeError, "`balance` must be a bool \\(True or False\\), got str"),
        ({"seed": 0.5}, TypeError, "`seed` must be an int, got float"),
    ],
)
def test_verification_accuracy_names_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    scores, same = np.linspace(0, 1, 20), np.arange(20) % 2 == 0
    with pytest.raises(error, match=match):
        verification_accuracy(scores, same, **kwargs)


def test_wrongly_typed_pairs_are_named() -> None:
    scores, same = np.linspace(0, 1, 4), np.array([True, False, True, False])
    with pytest.raises(TypeError, match=r"`far` must be a real number \(int or float\), got str"):
        tar_at_far(scores, same, far="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`is_same` must hold booleans \(or 0/1\), got values"):
        tar_at_far(scores, np.array([1, 0, 2, 0]))
    with pytest.raises(TypeError, match="`scores` must hold real numbers, got dtype <U"):
        roc_curve(np.array(["a", "b"]), np.array([True, False]))
    with pytest.raises(TypeError, match="`scores` must be a numpy array, a torch tensor or a list, got dict"):
        roc_curve({"a": 1}, same)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`scores` and `is_same` must be 1-D of equal length"):
        roc_curve(np.zeros(0), np.zeros(0, dtype=bool))
