"""Face-verification metrics over all pairs of a labelled embedding set: ROC, TAR at a fixed FAR, and
verification accuracy with the threshold chosen by k-fold cross-validation (the LFW protocol's way)."""

from __future__ import annotations

import numpy as np

from hf_margin._validation import (
    check_embeddings,
    check_finite,
    check_flags,
    check_in_range,
    check_integers,
    check_numbers,
    check_positive_int,
)
from hf_margin.functional.contrastive import labelled_pair_cosines
from hf_margin.metrics._arrays import ArrayLike, real_array, to_numpy, to_tensor


def pair_scores(embeddings: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity (float32) of every unordered pair (i < j) and whether the pair is genuine (same label).

    Args:
        embeddings: (N, D) finite embeddings, a tensor (any device) or a numpy array.
        labels: (N,) integer labels.
    """
    embeddings, labels = to_tensor(embeddings), to_tensor(labels)
    check_embeddings(embeddings)
    check_finite(embeddings, "embeddings")
    scores, same = labelled_pair_cosines(embeddings.detach().float(), labels)
    return scores.cpu().numpy(), same.cpu().numpy()


def _check_pairs(scores: ArrayLike, is_same: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """`scores` as finite float64 and `is_same` as bool numpy arrays (from arrays or tensors on any device)."""
    scores, same = real_array(scores, "scores"), to_numpy(is_same, "is_same")
    if same.dtype != np.bool_:
        if not (np.issubdtype(same.dtype, np.number) and np.isin(same, (0, 1)).all()):
            raise ValueError(f"`is_same` must hold booleans (or 0/1), got values {np.unique(same)[:10]}")
        same = same.astype(bool)
    if scores.shape != same.shape or scores.ndim != 1 or scores.size == 0:
        raise ValueError(
            f"`scores` and `is_same` must be 1-D of equal length (non-empty), got {scores.shape} and {same.shape}"
        )
    if same.all() or not same.any():
        raise ValueError("need both genuine and impostor pairs (`is_same` has a single value)")
    return scores, same


def roc_curve(scores: ArrayLike, is_same: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(false accept rate, true accept rate) at every threshold, from the strictest to the loosest.

    `scores` (finite) and `is_same` (bool or 0/1) are 1-D numpy arrays, tensors on any device, or lists.
    """
    scores, is_same = _check_pairs(scores, is_same)
    order = np.argsort(-scores, kind="stable")
    genuine = is_same[order]
    tar = np.concatenate([[0.0], np.cumsum(genuine) / genuine.sum()])
    far = np.concatenate([[0.0], np.cumsum(~genuine) / (~genuine).sum()])
    return far, tar


def tar_at_far(scores: ArrayLike, is_same: ArrayLike, far: float = 1e-2) -> float:
    """Share of genuine pairs accepted at the threshold where at most `far` of impostor pairs are accepted.

    `scores` and `is_same` as for `roc_curve`; `far` in [0, 1].
    """
    scores, is_same = _check_pairs(scores, is_same)
    check_numbers(far=far)
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
    scores: ArrayLike, is_same: ArrayLike, folds: int = 10, balance: bool = True, seed: int = 0
) -> tuple[float, float]:
    """Mean and std of accuracy over `folds` folds, each thresholded at the best value on the other folds.

    With `balance`, as many impostor pairs as genuine ones are drawn (fixed `seed`), as LFW's protocol has.
    `scores` and `is_same` as for `roc_curve`; `folds` >= 1 (at most the number of pairs used).
    """
    scores, is_same = _check_pairs(scores, is_same)
    check_integers(folds=folds, seed=seed)
    check_positive_int(folds, "folds")
    check_flags(balance=balance)
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
