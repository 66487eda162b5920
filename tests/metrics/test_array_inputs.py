"""Metrics accept numpy arrays and torch tensors (any device, requiring grad or not) alike and give the same figures
(issue 19 item 5: some metrics crashed on tensors, others on arrays). `device` is the suite's fixture (--device)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_margin.metrics import (
    NaiveBayesProbe,
    epsilon_opis,
    multilabel_compute_metrics,
    multilabel_metrics,
    negative_flip_compute_metrics,
    negative_flip_metrics,
    opis,
    pair_scores,
    precision_at_k,
    retrieval_metrics,
    tune_threshold,
    uniformity,
)


def _tensor(array: np.ndarray, device: str) -> torch.Tensor:
    tensor = torch.tensor(array, device=device)
    return tensor.requires_grad_(True) if tensor.is_floating_point() else tensor


def test_score_metrics_take_tensors(device: str) -> None:
    rng = np.random.default_rng(0)
    scores, targets = rng.random((10, 6)), np.tile([[1, 0, 1, 0, 0, 1], [0, 1, 0, 1, 1, 0]], (5, 1))
    scores_t, targets_t = _tensor(scores, device), _tensor(targets, device)
    assert multilabel_metrics(scores_t, targets_t, k=3) == multilabel_metrics(scores, targets, k=3)
    assert precision_at_k(scores_t, targets_t, k=2) == precision_at_k(scores, targets, k=2)
    assert tune_threshold(scores_t, targets_t) == tune_threshold(scores, targets)
    # bfloat16 has no numpy twin: read in float32
    assert precision_at_k(scores_t.bfloat16(), targets_t, k=2) == precision_at_k(
        scores_t.bfloat16().float().detach().cpu().numpy(), targets, k=2
    )


def test_label_metrics_take_tensors(device: str) -> None:
    old, new, labels = np.array([0, 1, 1, 2]), np.array([0, 2, 1, 1]), np.array([0, 1, 2, 2])
    expected = negative_flip_metrics(old, new, labels)
    assert negative_flip_metrics(*(_tensor(a, device) for a in (old, new, labels))) == expected


def test_embedding_metrics_take_numpy_arrays(device: str) -> None:
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    expected = retrieval_metrics(x, labels)
    assert retrieval_metrics(x.numpy(), labels.numpy()) == expected
    assert retrieval_metrics(x.to(device).clone().requires_grad_(True), labels.to(device)) == expected
    for got, want in zip(pair_scores(x.numpy(), labels.numpy()), pair_scores(x, labels), strict=True):
        np.testing.assert_array_equal(got, want)
    sim = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(x, dim=1).T
    assert opis(sim.numpy(), labels.numpy()) == opis(sim, labels)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda sim, y: epsilon_opis(sim, y, epsilon="0.1"), "epsilon"),
        (lambda sim, y: opis(sim, y, far_range=("0.01", 0.1)), r"far_range\[0\]"),
        (lambda sim, y: opis(sim, y, num_thresholds=5.0), "num_thresholds"),
        (lambda sim, y: uniformity(sim, t="2"), "t"),
        (lambda sim, y: NaiveBayesProbe(2, var_smoothing="1e-9"), "var_smoothing"),
        (lambda sim, y: NaiveBayesProbe(2.0), "num_classes"),
        (lambda sim, y: multilabel_compute_metrics(tuned="yes"), "tuned"),
        (lambda sim, y: multilabel_compute_metrics(k=2.0), "k"),
        (lambda sim, y: negative_flip_compute_metrics(y, num_old_classes=2.5), "num_old_classes"),
    ],
)
def test_wrongly_typed_settings_raise_a_type_error_naming_them(call: object, name: str) -> None:
    x = torch.nn.functional.normalize(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    with pytest.raises(TypeError, match=rf"`{name}` must be an? (int|real number|bool)"):
        call(x @ x.T, torch.tensor([0, 0, 1, 1, 2, 2]))  # type: ignore[operator]
