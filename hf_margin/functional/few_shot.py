"""Few-shot prototype losses of "SuSana Distancia": Proto-Triplet and the ICNN score loss, plus ProtoNet's logits.

Paper: Mendez-Ruiz, Gonzalez-Zapata, Gomez-Martinez, Alonso-Mendoza, Berrones-Santos, "SuSana Distancia is all you
need: Enforcing class separability in metric learning via two novel distance-based loss functions for few-shot
image classification", arXiv 2305.09062 (official code ``maumruiz/FSL-Loss``; written here from its formulas).

- Prototypes ``c_k`` are the class means of the support embeddings (ProtoNet); ``d(q, c) = sqrt(||q - c||^2 + eps)``
  with eps = 1e-6.
- Proto-Triplet: ``L_PT = mean_q max(0, d(q, c_{y_q}) - min_{k != y_q} d(q, c_k) + margin)``, margin 0.5.
- ICNN ("intra-class and nearest-neighbour") score of points X (labels y) against a reference set T (default X),
  with k neighbours (default 4) and ``ipc`` (default k + 1) neighbours looked at: ``nd_ij = d_ij / nn_dc_i`` (the
  distance to the j-th neighbour over the nearest different-class one, j <= k), rescaled per row by
  ``max(1, max_j nd_ij)``; ``lambda_sc = 1 - mean_rows(sum_j nd_ij sc_ij / #sc_i)``, ``lambda_dc = |mean_rows(sum_j
  dcnd_ij / #dc_i) + op|`` with ``dcnd = (d dc)[:, :k] / max(d dc)`` and op = -1 when no row has a different-class
  neighbour; ``gamma = mean_i #sc_i / k``; ``score = ((lambda_sc + lambda_dc) / 2 + gamma) / 2`` in [0, 1] and
  ``L_ICNN = -log(score)``.

Quirks of the official code kept (and where they are options):
- each point's first neighbour is dropped, assumed to be the point itself. With T = X we exclude the point itself
  instead (the same unless two points coincide); with an external T (queries against the support, or against the
  prototypes with ``--query_protos``) the official code drops each point's *nearest reference point*:
  ``drop_nearest=True`` reproduces that, False keeps it.
- when ``k + 2 >= |T|`` the code sets ``k = |T| - 2`` and ``gamma = 1`` (``clamp_k=True``); ``clamp_k=False``
  raises instead when there are too few reference points, and computes gamma.
Where ICNN departs from the official code: the code measures ICNN's neighbour distances as ``sqrt(d^2 + 1e-6)``
(the Proto-Triplet distance) and adds 1e-7 to its denominators; here ICNN uses exact Euclidean distances (with a
zero gradient where two points coincide) and floors a zero denominator at the smallest normal float. Both only
matter for distances near 0; a review comparing the two on small episodes reported score differences of at most
3.4e-8 (not re-measured here).
Choices where the description is silent: a mean over no rows is 0 (so lambda_sc = 1 when no
point has a same-class neighbour, as lambda_dc = |0 - 1| = 1 when none has a different-class one); the "no
different-class neighbour" test for op looks at the first k neighbours; divisions by a zero distance use the
smallest normal float instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS, reduce_losses
from hf_margin._validation import (
    check_choice,
    check_embeddings,
    check_integers,
    check_label_vector,
    check_number_in_range,
    check_positive_int,
    check_positive_number,
)
from hf_margin.functional._nonfinite import propagate_non_finite


def class_prototypes(support: Tensor, support_labels: Tensor) -> tuple[Tensor, Tensor]:
    """ProtoNet prototypes: ``(classes (K,), prototypes (K, D))``, the mean support embedding of each class."""
    check_embeddings(support, name="support")
    check_label_vector(support_labels, support.shape[0], "support_labels")
    classes, index = torch.unique(support_labels, sorted=True, return_inverse=True)
    sums = torch.zeros(len(classes), support.shape[1], dtype=support.dtype, device=support.device)
    sums.index_add_(0, index, support)
    counts = torch.bincount(index, minlength=len(classes)).to(support.dtype)
    return classes, sums / counts.unsqueeze(1)


def class_index(labels: Tensor, classes: Tensor, name: str = "query_labels") -> Tensor:
    """Position of each label in the sorted `classes`; a label without a class raises a ValueError."""
    position = torch.searchsorted(classes, labels).clamp_max(len(classes) - 1)
    missing = classes[position] != labels
    if missing.any():
        raise ValueError(
            f"`{name}` holds classes without support examples: {labels[missing].unique().tolist()} "
            f"(support classes: {classes.tolist()})"
        )
    return position


def prototype_distances(queries: Tensor, prototypes: Tensor, eps: float = 1e-6) -> Tensor:
    """(Q, K) distances ``sqrt(||q - c||^2 + eps)`` (the official code's smoothed Euclidean distance)."""
    return ((queries.unsqueeze(1) - prototypes.unsqueeze(0)).pow(2).sum(-1) + eps).sqrt()


def prototype_logits(queries: Tensor, prototypes: Tensor, temperature: float = 1.0) -> Tensor:
    """ProtoNet's logits ``-||q - c_k||^2 / T`` (the paper's "cross" component with T = 1), shape (Q, K)."""
    check_positive_number(temperature, "temperature")
    check_embeddings(queries, name="queries")
    check_embeddings(prototypes, queries.shape[1], name="prototypes")
    # In float32 or wider: squared distances overflow float16 long before the embeddings do.
    queries, prototypes = at_least_float32(queries), at_least_float32(prototypes)
    return -(queries.unsqueeze(1) - prototypes.unsqueeze(0)).pow(2).sum(-1) / temperature


def _episode(support: Tensor, support_labels: Tensor, queries: Tensor, query_labels: Tensor) -> tuple[Tensor, Tensor]:
    """Checked float32+ prototypes and each query's prototype index."""
    support, queries = at_least_float32(support), at_least_float32(queries)
    check_embeddings(queries, support.shape[1] if support.dim() == 2 else None, name="queries")
    check_label_vector(query_labels, queries.shape[0], "query_labels")
    classes, prototypes = class_prototypes(support, support_labels)
    return prototypes, class_index(query_labels, classes)


def proto_triplet_loss(
    support: Tensor,
    support_labels: Tensor,
    queries: Tensor,
    query_labels: Tensor,
    margin: float = 0.5,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """Proto-Triplet ``max(0, d(q, c_{y_q}) - min_{k != y_q} d(q, c_k) + margin)`` per query.

    Args:
        support: (S, D) support embeddings; support_labels: (S,) their classes (at least two classes).
        queries: (Q, D) query embeddings; query_labels: (Q,) classes present in the support.
        margin: the triplet margin (0.5 in the paper's code); 0 is the plain nearest-prototype hinge.
        eps: added under the square root of the distance (1e-6).
        reduction: "mean" (the paper's), "sum" or "none".

    Example:
        >>> proto_triplet_loss(model(support_x), support_y, model(query_x), query_y)
    """
    check_number_in_range(margin, "margin", 0.0, float("inf"))
    check_positive_number(eps, "eps")
    check_choice(reduction, "reduction", REDUCTIONS)
    prototypes, target = _episode(support, support_labels, queries, query_labels)
    if len(prototypes) < 2:
        raise ValueError(
            f"`support_labels` must hold at least two classes for a negative prototype, got {len(prototypes)}"
        )
    distances = prototype_distances(at_least_float32(queries), prototypes, eps)
    positive = distances.gather(1, target.unsqueeze(1)).squeeze(1)
    negative = distances.scatter(1, target.unsqueeze(1), float("inf")).min(1).values
    return reduce_losses(F.relu(positive - negative + margin), reduction)


def pairwise_euclidean(points: Tensor, reference: Tensor) -> Tensor:
    """(N, M) Euclidean distances, with a zero (not NaN) gradient where two points coincide."""
    squared = (points.unsqueeze(1) - reference.unsqueeze(0)).pow(2).sum(-1)
    positive = squared > 0
    return torch.where(positive, torch.where(positive, squared, torch.ones_like(squared)).sqrt(), 0.0)


def _mean_over(values: Tensor, rows: Tensor) -> Tensor:
    """Mean of `values` over the selected `rows`; 0 when none is selected."""
    return (values * rows).sum() / rows.sum().clamp_min(1)


def icnn_score(
    points: Tensor,
    labels: Tensor,
    reference: Tensor | None = None,
    reference_labels: Tensor | None = None,
    k: int = 4,
    ipc: int | None = None,
    drop_nearest: bool = True,
    clamp_k: bool = True,
) -> Tensor:
    """The ICNN score in [0, 1] of `points` against `reference` (default: the points themselves); 1 is best.

    Args:
        points: (N, D) embeddings; labels: (N,) their classes.
        reference: optional (M, D) reference set T (e.g. the support set or the prototypes), with
            reference_labels (M,).
        k: neighbours scored (4).
        ipc: neighbours looked at for the nearest different-class distance (default k + 1; the paper's full
            variant passes shots + queries).
        drop_nearest: with an external `reference`, drop each point's nearest reference point as the official
            code does (it assumes the point itself is there); ignored when the reference is the points.
        clamp_k: the official ``k = |T| - 2, gamma = 1`` when ``k + 2 >= |T|``; False raises instead.
    """
    check_integers(k=k)
    check_positive_int(k, "k")
    check_embeddings(points, name="points")
    check_label_vector(labels, points.shape[0], "labels")
    own = reference is None
    if own:
        reference, reference_labels = points, labels
    elif reference_labels is None:
        raise ValueError("`reference_labels` is required with `reference`")
    assert reference is not None and reference_labels is not None  # for mypy: set above
    check_embeddings(reference, points.shape[1], name="reference")
    check_label_vector(reference_labels, reference.shape[0], "reference_labels")
    size = reference.shape[0]
    skip = 0 if own or not drop_nearest else 1  # an external point dropped, or the point itself masked out
    gamma_one = clamp_k and k + 2 >= size
    if gamma_one:
        k = size - 2
    ipc = k + 1 if ipc is None else ipc
    available = size - (1 if own else skip)
    if k < 1 or ipc < k or ipc > available:
        itself = ", one of them the point itself" if own else ""
        raise ValueError(
            f"`k` = {k} and `ipc` = {ipc} need k >= 1, ipc >= k and ipc <= {available} neighbours "
            f"(a reference set of {size} points{itself})"
        )

    distances = pairwise_euclidean(at_least_float32(points), at_least_float32(reference))
    if own:
        eye = torch.eye(size, dtype=torch.bool, device=distances.device)
        distances = distances.masked_fill(eye, float("inf"))
    nearest, index = torch.topk(distances, ipc + skip, dim=1, largest=False, sorted=True)
    nearest, index = nearest[:, skip:], index[:, skip:]
    same = reference_labels[index] == labels.unsqueeze(1)
    tiny = torch.finfo(nearest.dtype).tiny
    nearest_other = torch.where(same, torch.full_like(nearest, float("inf")), nearest).min(1).values
    scored, same_k = nearest[:, :k], same[:, :k]
    ratio = scored / nearest_other.clamp_min(tiny).unsqueeze(1)
    ratio = ratio / ratio.max(1, keepdim=True).values.clamp_min(1.0)
    same_count, other_count = same_k.sum(1), (~same_k).sum(1)
    lambda_sc = 1 - _mean_over((ratio * same_k).sum(1) / same_count.clamp_min(1), same_count > 0)
    other = scored * ~same_k
    other = other / other.max().clamp_min(tiny)
    offset = -1.0 if other_count.sum() == 0 else 0.0
    lambda_dc = (_mean_over(other.sum(1) / other_count.clamp_min(1), other_count > 0) + offset).abs()
    gamma = torch.ones_like(lambda_sc) if gamma_one else (same_count.to(scored.dtype) / k).mean()
    score = ((lambda_sc + lambda_dc) / 2 + gamma) / 2
    # Ranks and ratios saturate: a NaN/inf point would otherwise give a plausible finite score.
    return propagate_non_finite(score, points, reference)


def icnn_loss(
    points: Tensor,
    labels: Tensor,
    reference: Tensor | None = None,
    reference_labels: Tensor | None = None,
    k: int = 4,
    ipc: int | None = None,
    drop_nearest: bool = True,
    clamp_k: bool = True,
) -> Tensor:
    """ICNN loss ``-log(icnn_score(...))`` (arguments as `icnn_score`).

    The score is at least ``min(1/4, 1/(2 k N))`` (gamma = 0 forces lambda_sc = 1), so the loss is finite.

    Example:
        >>> icnn_loss(torch.cat([support, queries]), torch.cat([support_y, query_y]), ipc=shots + queries)
    """
    return -torch.log(icnn_score(points, labels, reference, reference_labels, k, ipc, drop_nearest, clamp_k))
