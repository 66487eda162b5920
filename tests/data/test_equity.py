"""DatasetEquity likelihoods: cluster size over the largest cluster, noise as one cluster, the weight column."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset

from hf_margin.losses.equity import add_equity_weights, cluster_likelihoods


def blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = [np.zeros(3), np.full(3, 20.0), np.full(3, -20.0)]
    points = [c + rng.normal(scale=0.1, size=(n, 3)) for c, n in zip(centres, (60, 30, 12), strict=True)]
    return np.concatenate([*points, np.array([[100.0, 0, 0], [0, 100.0, 0]])])  # two isolated (noise) points


def test_likelihood_is_cluster_size_over_largest() -> None:
    p = cluster_likelihoods(blobs(), reducer="none", eps=1.0, min_samples=5)
    np.testing.assert_allclose(p[:60], 1.0)
    np.testing.assert_allclose(p[60:90], 0.5)
    np.testing.assert_allclose(p[90:102], 12 / 60)
    np.testing.assert_allclose(p[102:], 2 / 60)  # the noise points form one "cluster" of 2


def test_reducers_run_and_stay_in_range() -> None:
    for reducer in ("tsne", "pca"):
        p = cluster_likelihoods(blobs(), reducer=reducer, iterations=250, eps=3.0, min_samples=5)
        assert p.shape == (104,) and (p > 0).all() and (p <= 1).all() and p.max() == 1


def test_dataset_gets_likelihood_and_weight_columns() -> None:
    data = Dataset.from_dict({"x": blobs().tolist(), "label": [0] * 104})
    weighted = add_equity_weights(
        data,
        lambda rows: torch.tensor(rows),
        "x",
        eta=1.0,
        gamma=5.0,
        batch_size=16,
        reducer="none",
        eps=1.0,
        min_samples=5,
    )
    assert weighted.column_names == ["x", "label", "equity_likelihood", "sample_weight"]
    weights = np.asarray(weighted["sample_weight"])
    np.testing.assert_allclose(weights[:60], 0.5)  # the commonest look: w(1) = eta / (eta + 1)
    np.testing.assert_allclose(weights[60:90], (1 + 0.5**5) / 2, rtol=1e-6)
    assert weights[-1] > weights[70] > weights[0]
    with pytest.raises(ValueError, match="`input_column`"):
        add_equity_weights(data, lambda rows: rows, "image")
    with pytest.raises(ValueError, match="`reducer`"):
        cluster_likelihoods(blobs(), reducer="umap")
