"""Face-verification metrics over all pairs of a labelled embedding set: ROC, TAR at a fixed FAR, and
verification accuracy with the threshold chosen by k-fold cross-validation (the LFW protocol's way)."""

from __future__ import annotations

import numpy as np
import torch

from hf_margin._validation import check_embeddings, check_in_range
from hf_margin.functional.contrastive import labelled_pair_cosines


def pair_scores(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity (float32) of every unordered pair (i < j) and whether the pair is genuine (same label)."""
    check_embeddings(embeddings)
    scores, same = labelled_pair_cosines(embeddings.detach().float(), labels)
    return scores.cpu().numpy(), same.cpu().numpy()


def _check_pairs(scores: np.ndarray, is_same: np.ndarray) -> None:
    if scores.shape != is_same.shape or scores.ndim != 1:
        raise ValueError(f"`scores` and `is_same` must be 1-D of equal length, got {scores.shape} and {is_same.shape}")
    if is_same.all() or not is_same.any():
        raise ValueError("need both genuine and impostor pairs (`is_same` has a single value)")


def roc_curve(scores: np.ndarray, is_same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false accept rate, true accept rate) at every threshold, from the strictest to the loosest."""
    _check_pairs(scores, is_same)
    order = np.argsort(-scores, kind="stable")
    genuine = is_same[order]
    tar = np.concatenate([[0.0], np.cumsum(genuine) / genuine.sum()])
    far = np.concatenate([[0.0], np.cumsum(~genuine) / (~genuine).sum()])
    return far, tar


def tar_at_far(scores: np.ndarray, is_same: np.ndarray, far: float = 1e-2) -> float:
    """Share of genuine pairs accepted at the threshold where at most `far` of impostor pairs are accepted."""
    _check_pairs(scores, is_same)
    check_in_range(far, "far", 0.0, 1.0)
    impostors = np.sort(scores[~is_same])[::-1]
    allowed = int(np.floor(far * len(impostors)))
    threshold = impostors[allowed] if allowed < len(impostors) else -np.inf
    return float((scores[is_same] > threshold).mean())


def _best_threshold(scores: np.ndarray, is_same: np.ndarray) -> float:
    """The threshold (accept if score > t) with the highest accuracy on these pairs."""
    order = np.argsort(-scores, kind="stable")
    s, genuine = scores[order], is_same[order]
    # Accept the first k pairs (k = 0..n): correct = genuine among them + impostors among the rest.
    correct = np.concatenate([[0], np.cumsum(genuine)]) + np.concatenate(
        [[(~genuine).sum()], (~genuine).sum() - np.cumsum(~genuine)]
    )
    k = int(np.argmax(correct))
    if k == 0:
        return float(s[0])
    if k == len(s):
        return float(s[-1]) - 1e-6
    return float((s[k - 1] + s[k]) / 2)


def verification_accuracy(
    scores: np.ndarray, is_same: np.ndarray, folds: int = 10, balance: bool = True, seed: int = 0
) -> tuple[float, float]:
    """Mean and std of accuracy over `folds` folds, each thresholded at the best value on the other folds.

    With `balance`, as many impostor pairs as genuine ones are drawn (fixed `seed`), as LFW's protocol has.
    """
    _check_pairs(scores, is_same)
    rng = np.random.default_rng(seed)
    genuine, impostor = np.flatnonzero(is_same), np.flatnonzero(~is_same)
    if balance and len(impostor) > len(genuine):
        impostor = rng.choice(impostor, size=len(genuine), replace=False)
    chosen = rng.permutation(np.concatenate([genuine, impostor]))
    if len(chosen) < folds:
        raise ValueError(f"need at least `folds`={folds} pairs, got {len(chosen)}")
    accuracies = []
    for test in np.array_split(chosen, folds):
        train = np.setdiff1d(chosen, test)
        threshold = _best_threshold(scores[train], is_same[train])
        accuracies.append(((scores[test] > threshold) == is_same[test]).mean())
    return float(np.mean(accuracies)), float(np.std(accuracies))
