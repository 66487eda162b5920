"""OPIS and epsilon-OPIS: how much the accept/reject utility of a similarity threshold varies across classes.

Zhang et al., "Threshold-Consistent Margin Loss for Open-World Deep Metric Learning" (ICLR 2024, arXiv
2307.04047) introduce OPIS (operating-point-inconsistency score). The paper's exact definition could NOT be read
from a primary source; this module implements the reading of a third-party description that says it follows the
paper, and every unverified detail is an explicit option (our choice, not attributed to the paper):

- pairs are unordered (i < j) with cosine similarity s; a pair is accepted at threshold d when s >= d;
- class c's positives are its within-class pairs, its negatives the pairs with exactly one end in c;
  ``U_c(d)`` = harmonic mean of TPR_c(d) and TNR_c(d) (0 when both are 0); classes without a within-class pair
  (singletons) are left out;
- calibration range: the thresholds at which the global false-accept rate (over all negative pairs) runs over
  `far_range` (default (1e-2, 1e-1), the third-party choice), as quantiles of the negative similarities, on a
  grid of `num_thresholds` points (default 101);
- ``OPIS = mean_d (1/C) sum_c (U_c(d) - mean_c U_c(d))^2``: the across-class variance of the utility, averaged
  over the grid (the integral average over the range);
- epsilon-OPIS (our reading of a [RECALL]ed description, unverified): at each threshold, the squared gap between
  the mean utility of the best k and of the worst k classes, ``k = max(1, floor(epsilon * C))``, averaged over
  the grid. `epsilon` has no default on purpose. Which classes are the best and worst is our choice too: by
  default they are re-ranked at each threshold (``ranking="per_threshold"``); ``ranking="fixed"`` ranks them
  once by their mean utility over the range (the other plausible reading).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from hf_margin._validation import (
    check_choice,
    check_finite,
    check_in_range,
    check_integers,
    check_label_vector,
    check_numbers,
    check_positive_int,
)
from hf_margin.functional.contrastive import upper_triangle
from hf_margin.metrics._arrays import ArrayLike, to_tensor

Ranking = Literal["per_threshold", "fixed"]


def _pair_similarities(similarities: ArrayLike, labels: ArrayLike) -> tuple[Tensor, Tensor, Tensor]:
    """The unordered pairs (i < j): their float64 similarities and the labels of their two ends, each (P,).

    Tensors (any device) or numpy arrays; non-finite similarities raise a ValueError naming them.
    """
    similarities, labels = to_tensor(similarities), to_tensor(labels)
    if (
        not isinstance(similarities, Tensor)
        or similarities.dim() != 2
        or similarities.shape[0] != similarities.shape[1]
    ):
        got = tuple(similarities.shape) if isinstance(similarities, Tensor) else type(similarities).__name__
        raise ValueError(f"`similarities` must be a square (n, n) matrix of the set against itself, got {got}")
    check_finite(similarities, "similarities")
    n = similarities.shape[0]
    ends = check_label_vector(labels, n).to(similarities.device).unsqueeze(1).expand(n, n)
    return upper_triangle(similarities.detach().double()), upper_triangle(ends), upper_triangle(ends.T)


def linear_quantiles(values: Tensor, q: Tensor) -> Tensor:
    """Quantiles of a 1-D tensor with linear interpolation (torch.quantile's default), on `values`' device.

    Sorts once instead of calling ``torch.quantile``, which refuses inputs of more than 2^24 elements (the negative
    pairs of an evaluation set of about 5,800 points). Not ``kthvalue``: on CPU it takes quadratic time on
    reverse-sorted input.

    Args:
        values: (P,) non-empty.
        q: (K,) probabilities in [0, 1].
    """
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError(f"`values` must be a non-empty 1-D tensor, got shape {tuple(values.shape)}")
    ordered = values.sort().values
    position = q.to(device=values.device, dtype=torch.float64) * (values.numel() - 1)
    low, high = position.floor().long(), position.ceil().long()
    return torch.lerp(ordered[low], ordered[high], (position - low).to(values.dtype))


def calibration_thresholds(
    similarities: ArrayLike,
    labels: ArrayLike,
    far_range: tuple[float, float] = (1e-2, 1e-1),
    num_thresholds: int = 101,
) -> Tensor:
    """The threshold grid (num_thresholds,) spanning the global false-accept-rate range `far_range`."""
    check_integers(num_thresholds=num_thresholds)
    check_positive_int(num_thresholds, "num_thresholds")
    low, high = far_range
    check_numbers(**{"far_range[0]": low, "far_range[1]": high})
    check_in_range(low, "far_range[0]", 0.0, 1.0)
    check_in_range(high, "far_range[1]", low, 1.0)
    scores, first, second = _pair_similarities(similarities, labels)
    negatives = scores[first != second]
    if negatives.numel() == 0:
        raise ValueError("`labels` has a single class: no negative pairs to calibrate the false-accept rate on")
    top, bottom = linear_quantiles(negatives, torch.tensor([1.0 - low, 1.0 - high]))
    return torch.linspace(float(bottom), float(top), num_thresholds, dtype=torch.float64)


def utility_curves(similarities: ArrayLike, labels: ArrayLike, thresholds: ArrayLike) -> Tensor:
    """Per-class utility U_c(d), harmonic mean of TPR_c and TNR_c, as a (classes, thresholds) matrix.

    Classes without a within-class pair are left out (rows follow the sorted labels of the remaining classes).
    `thresholds` must be finite.
    """
    scores, first, second = _pair_similarities(similarities, labels)
    grid = torch.as_tensor(to_tensor(thresholds)).to(scores)
    check_finite(grid, "thresholds")
    curves = []
    for label in torch.unique(torch.cat([first, second])):
        positive = scores[(first == label) & (second == label)]
        negative = scores[(first == label) ^ (second == label)]
        if positive.numel() == 0:
            continue
        tpr = (positive.unsqueeze(1) >= grid).double().mean(dim=0)
        tnr = (negative.unsqueeze(1) < grid).double().mean(dim=0) if negative.numel() else torch.ones_like(grid)
        curves.append(torch.where(tpr + tnr > 0, 2 * tpr * tnr / (tpr + tnr).clamp_min(1e-300), 0.0))
    if not curves:
        raise ValueError("`labels` has no class with two or more members: OPIS needs within-class pairs")
    return torch.stack(curves)


def _calibrated_curves(
    similarities: ArrayLike, labels: ArrayLike, far_range: tuple[float, float], num_thresholds: int
) -> Tensor:
    """`utility_curves` over the calibration grid of `calibration_thresholds`: (classes, num_thresholds)."""
    thresholds = calibration_thresholds(similarities, labels, far_range, num_thresholds)
    return utility_curves(similarities, labels, thresholds)


def opis(
    similarities: ArrayLike,
    labels: ArrayLike,
    far_range: tuple[float, float] = (1e-2, 1e-1),
    num_thresholds: int = 101,
) -> float:
    """OPIS: the across-class variance of the threshold utility, averaged over the calibration range.

    Args:
        similarities: (n, n) finite cosine similarities of an evaluation set against itself (a tensor on any
            device or a numpy array; non-finite entries raise a ValueError that counts them).
        labels: (n,) its integer class labels.
        far_range: global false-accept rates that bound the calibration range (our choice, see the module).
        num_thresholds: grid points over the range.

    Example:
        >>> x = F.normalize(embeddings, dim=1)
        >>> opis(x @ x.T, labels)
    """
    curves = _calibrated_curves(similarities, labels, far_range, num_thresholds)
    return float(curves.var(dim=0, unbiased=False).mean())


def epsilon_opis(
    similarities: ArrayLike,
    labels: ArrayLike,
    epsilon: float,
    far_range: tuple[float, float] = (1e-2, 1e-1),
    num_thresholds: int = 101,
    ranking: Ranking = "per_threshold",
) -> float:
    """epsilon-OPIS (our reading): squared gap between the best and worst epsilon fraction of classes' utility.

    Args:
        similarities / labels / far_range / num_thresholds: as for `opis`.
        epsilon: the fraction of classes in each group, in (0, 0.5].
        ranking: which classes are "best" and "worst" (our choice, unverified against the paper):
            "per_threshold" ranks the classes anew at each threshold; "fixed" ranks them once, by their mean
            utility over the calibration range, and keeps the same two groups at every threshold.

    Example:
        >>> epsilon_opis(x @ x.T, labels, epsilon=0.05)
    """
    check_numbers(epsilon=epsilon)
    check_in_range(epsilon, "epsilon", 1e-12, 0.5)
    check_choice(ranking, "ranking", ("per_threshold", "fixed"))
    curves = _calibrated_curves(similarities, labels, far_range, num_thresholds)
    k = max(1, int(epsilon * curves.shape[0]))
    if ranking == "per_threshold":
        ranked = curves.sort(dim=0).values
    else:
        ranked = curves[curves.mean(dim=1).argsort(stable=True)]
    return float((ranked[-k:].mean(dim=0) - ranked[:k].mean(dim=0)).pow(2).mean())
