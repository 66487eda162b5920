"""Every public metric given non-finite values raises a ValueError naming the argument and how many entries are
non-finite (issue 19 item 4: a diverged model must never get a believable figure such as R@1 0.167 or accuracy 0.5)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from hf_margin.metrics import (
    NaiveBayesProbe,
    calibration_thresholds,
    epsilon_opis,
    learning_curve,
    multilabel_compute_metrics,
    multilabel_metrics,
    negative_flip_compute_metrics,
    opis,
    pair_scores,
    pgd_attack,
    pma_attack,
    pma_robust_accuracy,
    precision_at_k,
    retrieval_metrics,
    roc_curve,
    tar_at_far,
    tolerance,
    tune_threshold,
    uniformity,
    utility_curves,
    verification_accuracy,
)

LABELS = torch.tensor([0, 0, 1, 1, 2, 2])


def _embeddings(bad: int = 0, value: float = float("nan")) -> torch.Tensor:
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    x.view(-1)[:bad] = value
    return x


def _similarities(bad: int = 0) -> torch.Tensor:
    x = torch.nn.functional.normalize(_embeddings(), dim=1)
    sim = x @ x.T
    sim.view(-1)[1 : 1 + bad] = float("nan")
    return sim


def _thresholds(bad: int = 0) -> torch.Tensor:
    thresholds = torch.tensor([0.1, 0.2, 0.3])
    thresholds[:bad] = float("nan")
    return thresholds


def _pairs(bad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    scores = np.linspace(0.0, 1.0, 20)
    scores[:bad] = np.nan
    return scores, np.arange(20) % 2 == 0


def _multilabel(bad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    scores, targets = rng.random((8, 5)), np.tile([[1, 0, 0, 1, 0], [0, 1, 1, 0, 1]], (4, 1))
    scores.flat[:bad] = np.inf
    return scores, targets


def _flip_logits(bad: int = 0) -> np.ndarray:
    logits = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    logits.flat[:bad] = np.nan
    return logits


class _Linear(torch.nn.Module):
    def __init__(self, poisoned: bool) -> None:
        super().__init__()
        self.poisoned = poisoned

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([x.sum(1), -x.sum(1)], dim=1)
        return logits * float("nan") if self.poisoned else logits


# (call with `bad` non-finite entries, the argument's name)
CASES: dict[str, tuple[Callable[[int], Any], str]] = {
    "retrieval_metrics query": (lambda b: retrieval_metrics(_embeddings(b), LABELS), "query_emb"),
    "retrieval_metrics ref": (
        lambda b: retrieval_metrics(_embeddings(), LABELS, _embeddings(b, float("inf")), LABELS),
        "ref_emb",
    ),
    "pair_scores": (lambda b: pair_scores(_embeddings(b), LABELS), "embeddings"),
    "roc_curve": (lambda b: roc_curve(*_pairs(b)), "scores"),
    "tar_at_far": (lambda b: tar_at_far(*_pairs(b)), "scores"),
    "verification_accuracy": (lambda b: verification_accuracy(*_pairs(b), folds=2), "scores"),
    "opis": (lambda b: opis(_similarities(b), LABELS), "similarities"),
    "epsilon_opis": (lambda b: epsilon_opis(_similarities(b), LABELS, epsilon=0.3), "similarities"),
    "calibration_thresholds": (lambda b: calibration_thresholds(_similarities(b), LABELS), "similarities"),
    "utility_curves": (
        lambda b: utility_curves(_similarities(), LABELS, _thresholds(b)),
        "thresholds",
    ),
    "uniformity": (lambda b: uniformity(_embeddings(b)), "embeddings"),
    "tolerance": (lambda b: tolerance(_embeddings(b), LABELS), "embeddings"),
    "multilabel_metrics": (lambda b: multilabel_metrics(*_multilabel(b), k=2), "scores"),
    "precision_at_k": (lambda b: precision_at_k(*_multilabel(b), k=2), "scores"),
    "tune_threshold": (lambda b: tune_threshold(*_multilabel(b)), "scores"),
    "tune_threshold candidates": (
        lambda b: tune_threshold(*_multilabel(), candidates=np.array([0.5, np.nan, np.nan])[: b + 1]),
        "candidates",
    ),
    "multilabel_compute_metrics": (
        lambda b: multilabel_compute_metrics(k=2)(
            SimpleNamespace(predictions=_multilabel(b)[0] - 0.5, label_ids=_multilabel()[1])
        ),
        "predictions",
    ),
    "negative_flip_compute_metrics": (
        lambda b: negative_flip_compute_metrics(np.array([0, 1, 1]))(
            SimpleNamespace(predictions=_flip_logits(b), label_ids=np.array([0, 1, 1]))
        ),
        "predictions",
    ),
    "NaiveBayesProbe.fit": (lambda b: NaiveBayesProbe(3).fit(_embeddings(b).double(), LABELS), "features"),
    "NaiveBayesProbe.predict": (
        lambda b: NaiveBayesProbe(3).fit(_embeddings(), LABELS).predict(_embeddings(b)),
        "features",
    ),
    "learning_curve": (
        lambda b: learning_curve(_embeddings(), LABELS, _embeddings(b), LABELS, shots_per_class=[1], seeds=[0]),
        "test_features",
    ),
    "pma_attack": (
        lambda b: pma_attack(_Linear(False), _embeddings(b), LABELS % 2, 0.1, steps=3, bounds=None),
        "inputs",
    ),
    "pgd_attack": (
        lambda b: pgd_attack(_Linear(False), _embeddings(b), LABELS % 2, 0.1, steps=3, bounds=None),
        "inputs",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_non_finite_input_raises_naming_the_argument_and_the_count(case: str) -> None:
    call, name = CASES[case]
    for bad in (1, 2):
        with pytest.raises(ValueError, match=rf"`{name}`.* {bad} non-finite"):
            call(bad)


@pytest.mark.parametrize("case", sorted(CASES))
def test_finite_input_still_gives_finite_figures(case: str) -> None:
    result = CASES[case][0](0)
    values = result.values() if isinstance(result, dict) else [result]
    for value in values:
        if isinstance(value, torch.Tensor | np.ndarray | float):
            assert np.isfinite(np.asarray(value.detach() if isinstance(value, torch.Tensor) else value)).all()


def test_the_reported_figures_of_a_diverged_model_are_refused() -> None:
    # the three believable figures
    with pytest.raises(ValueError, match=r"`query_emb` has 24 non-finite"):
        retrieval_metrics(torch.full((6, 4), float("nan")), LABELS)
    with pytest.raises(ValueError, match=r"`scores` has 20 non-finite"):
        verification_accuracy(np.full(20, np.nan), np.arange(20) % 2 == 0)
    with pytest.raises(ValueError, match=r"`similarities` has 36 non-finite"):
        opis(torch.full((6, 6), float("nan")), LABELS)


def test_an_attacked_model_with_non_finite_logits_is_refused() -> None:
    inputs, labels = torch.rand(4, 3), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"logits of `model`.* 8 non-finite"):
        pma_robust_accuracy(_Linear(True), (inputs, labels), epsilon=0.1, steps=3, progress=False)
