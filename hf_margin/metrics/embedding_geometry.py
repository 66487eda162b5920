"""Uniformity and tolerance of an embedding space: the two sides of the contrastive temperature's trade-off.

- Uniformity (Wang & Isola, "Understanding Contrastive Representation Learning through Alignment and Uniformity on
  the Hypersphere", ICML 2020, arXiv 2005.10242): ``log mean_{i < j} exp(-t ||f_i - f_j||^2)`` over distinct pairs,
  t = 2. For unit vectors it is <= 0, and 0 iff all embeddings coincide; lower is more uniform.
- Tolerance (Wang & Liu, "Understanding the Behaviour of Contrastive Loss", CVPR 2021, arXiv 2012.09740): how close
  same-class samples stay, here the mean cosine similarity over distinct same-class pairs, in [-1, 1]. The paper
  writes it as an expectation of ``f(x)^T f(y) 1[l(x) = l(y)]`` (not checked against its PDF); we average over the
  same-class pairs only, so the value does not depend on the number of classes.
Both are differentiable (uniformity is Wang & Isola's loss term as well). As evaluation metrics they refuse
non-finite embeddings with a ValueError that counts them (a host sync each call).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_embeddings, check_finite, check_positive_number
from hf_margin.functional.contrastive import labelled_pair_cosines


def uniformity(embeddings: Tensor, t: float = 2.0, normalize: bool = True) -> Tensor:
    """``log mean_{i<j} exp(-t ||f_i - f_j||^2)`` (Wang & Isola 2020, t = 2); <= 0 for unit vectors.

    Args:
        embeddings: (N, D), N >= 2.
        t: the kernel's scale > 0.
        normalize: L2-normalise the rows first (the definition is for features on the unit sphere).

    Example:
        >>> uniformity(model.encode(texts, convert_to_tensor=True))
    """
    check_embeddings(embeddings)
    check_finite(embeddings, "embeddings")
    check_positive_number(t, "t")
    if embeddings.shape[0] < 2:
        raise ValueError(f"`embeddings` needs at least 2 rows for a pair, got shape {tuple(embeddings.shape)}")
    x = at_least_float32(embeddings)
    x = F.normalize(x, dim=1) if normalize else x
    squared = torch.pdist(x).pow(2)
    return torch.logsumexp(-t * squared, dim=0) - math.log(squared.numel())


def tolerance(embeddings: Tensor, labels: Tensor) -> Tensor:
    """Mean cosine similarity over distinct same-class pairs (Wang & Liu 2021's tolerance), in [-1, 1].

    Args:
        embeddings: (N, D).
        labels: (N,) integer classes; at least one class must have two rows.
    """
    check_embeddings(embeddings)
    check_finite(embeddings, "embeddings")
    cosines, same = labelled_pair_cosines(embeddings, labels)
    if not same.any():
        raise ValueError("`labels` has no class with two rows: tolerance needs at least one same-class pair")
    return cosines[same].mean()
