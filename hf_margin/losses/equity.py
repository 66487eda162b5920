"""DatasetEquity's per-example likelihoods and weights (Shrivastava et al., ICCV-W 2023, arXiv 2308.09878).

Every example is embedded (the paper: an ImageNet ResNet-101's pooled features; here any backbone), the
embeddings are reduced (the paper: t-SNE to 3-D, perplexity 30, 500 iterations, PCA initialisation) and
clustered with DBSCAN (eps 1.0, min_samples 10). An example's likelihood is its cluster's size over the largest
cluster's size (DBSCAN's noise points count as one cluster), and its loss weight is the generalized focal weight
``(eta + (1 - p)^gamma) / (eta + 1)`` (`hf_margin.functional.focal.generalized_focal_weight`), so that examples
that look rare weigh more. The weights become a dataset column that `sample_weight`-aware losses use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hf_margin._extras import require
from hf_margin._validation import check_choice
from hf_margin.functional.focal import generalized_focal_weight


def cluster_likelihoods(
    embeddings: Any,
    reducer: str = "tsne",
    dimensions: int = 3,
    perplexity: float = 30.0,
    iterations: int = 500,
    eps: float = 1.0,
    min_samples: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """Likelihood p in (0, 1] of every row: its DBSCAN cluster's size / the largest cluster's size.

    Args:
        embeddings: (n, d) array-like.
        reducer: "tsne" (the paper), "pca" or "none" (cluster the embeddings as they are).
        dimensions: output dimensions of the reducer (3 in the paper).
        perplexity, iterations: t-SNE's perplexity and number of iterations.
        eps, min_samples: DBSCAN's neighbourhood radius and core-point count.
        seed: the reducer's random state.
    """
    require("sklearn", "data", "DatasetEquity's clustering")
    from sklearn.cluster import DBSCAN
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    check_choice(reducer, "reducer", ("tsne", "pca", "none"))
    points = np.asarray(embeddings, dtype=np.float64)
    if points.ndim != 2 or len(points) < 2:
        raise ValueError(f"`embeddings` must have shape (n >= 2, d), got {points.shape}")
    if reducer == "tsne":
        points = TSNE(
            dimensions,
            perplexity=min(perplexity, len(points) - 1),
            max_iter=iterations,
            init="pca",
            learning_rate="auto",
            random_state=seed,
        ).fit_transform(points)
    elif reducer == "pca":
        points = PCA(min(dimensions, *points.shape), random_state=seed).fit_transform(points)
    clusters = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(points)
    _, inverse, sizes = np.unique(clusters, return_inverse=True, return_counts=True)
    return sizes[inverse] / sizes.max()


def add_equity_weights(
    dataset: Any,
    embed: Callable[[list[Any]], Any],
    input_column: str,
    eta: float = 1.0,
    gamma: float = 5.0,
    batch_size: int = 64,
    likelihood_column: str = "equity_likelihood",
    weight_column: str = "sample_weight",
    **cluster_options: Any,
) -> Any:
    """The `datasets.Dataset` with a likelihood column and a generalized-focal weight column.

    Args:
        dataset: the training set.
        embed: maps a batch of `input_column` values to an (n, d) array or tensor (e.g. a frozen backbone).
        input_column: the column holding what `embed` takes (images, texts, ...).
        eta, gamma: the weight's parameters (README defaults 1 and 5; 0.5 and 5 in the BEVFormer configs).
        batch_size: rows per `embed` call (shown with a progress bar).
        likelihood_column, weight_column: names of the two new columns (replaced if present).
        **cluster_options: passed to :func:`cluster_likelihoods` (reducer, dimensions, eps, min_samples, ...).
    """
    if input_column not in dataset.column_names:
        raise ValueError(f"`input_column` {input_column!r} is not a column; the dataset has {dataset.column_names}")

    def embed_batch(rows: dict[str, list[Any]]) -> dict[str, Any]:
        vectors = embed(rows[input_column])
        if isinstance(vectors, torch.Tensor):
            vectors = vectors.detach().float().cpu().numpy()
        return {"_equity_embedding": np.asarray(vectors, dtype=np.float32)}

    embedded = dataset.map(embed_batch, batched=True, batch_size=batch_size, desc="DatasetEquity: embedding")
    likelihood = cluster_likelihoods(np.asarray(embedded["_equity_embedding"]), **cluster_options)
    weights = generalized_focal_weight(torch.from_numpy(likelihood), eta, gamma).tolist()
    present = [c for c in (likelihood_column, weight_column) if c in dataset.column_names]
    dataset = dataset.remove_columns(present) if present else dataset
    return dataset.add_column(likelihood_column, likelihood.tolist()).add_column(weight_column, weights)
