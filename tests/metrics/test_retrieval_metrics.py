"""Recall@1 and MAP@R equal pytorch-metric-learning's AccuracyCalculator (cosine k-NN) on identical inputs."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

from hf_margin.metrics.retrieval import retrieval_metrics


def pml_calculator() -> AccuracyCalculator:
    return AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r"), knn_func=CustomKNN(CosineSimilarity())
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_pml_leave_one_out_and_separate_reference(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    queries, labels = torch.randn(50, 6, generator=generator), torch.randint(0, 6, (50,), generator=generator)
    labels[0] = 99  # a lone query: left out by both
    ours, theirs = retrieval_metrics(queries, labels), pml_calculator().get_accuracy(queries, labels)
    assert ours["R@1"] == pytest.approx(theirs["precision_at_1"])
    assert ours["MAP@R"] == pytest.approx(theirs["mean_average_precision_at_r"])
    ref, ref_labels = torch.randn(40, 6, generator=generator), torch.randint(0, 6, (40,), generator=generator)
    ours = retrieval_metrics(queries, labels, ref, ref_labels)
    theirs = pml_calculator().get_accuracy(queries, labels, ref, ref_labels, ref_includes_query=False)
    assert ours["R@1"] == pytest.approx(theirs["precision_at_1"])
    assert ours["MAP@R"] == pytest.approx(theirs["mean_average_precision_at_r"])


def test_hand_computed_map_at_r() -> None:
    # query 0 (class 0) has R = 2 relevant: ranking 1 (hit), 2 (miss), 3 (hit): MAP@R = (1/1) / 2 = 0.5.
    queries = torch.tensor([[1.0, 0.0]])
    ref = torch.tensor([[0.99, 0.1], [0.95, 0.3], [0.9, 0.44]])
    got = retrieval_metrics(queries, torch.tensor([0]), ref, torch.tensor([0, 1, 0]))
    assert got == {"R@1": 1.0, "MAP@R": 0.5}
    perfect = retrieval_metrics(torch.eye(4).repeat(2, 1), torch.arange(4).repeat(2))
    assert perfect == {"R@1": 1.0, "MAP@R": 1.0}


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="query_labels"):
        retrieval_metrics(torch.randn(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="ref_labels"):
        retrieval_metrics(torch.randn(3, 2), torch.zeros(3, dtype=torch.long), torch.randn(3, 2))
    with pytest.raises(ValueError, match="no query"):
        retrieval_metrics(torch.randn(3, 2), torch.arange(3))


@pytest.mark.parametrize("bad", [lambda y: y.float(), lambda y: y.tolist(), lambda y: y == 0])
def test_labels_must_be_integer_tensors(bad) -> None:
    x, y = torch.randn(4, 2), torch.tensor([0, 0, 1, 1])
    with pytest.raises(TypeError, match="`query_labels`"):
        retrieval_metrics(x, bad(y))
    with pytest.raises(TypeError, match="`ref_labels`"):
        retrieval_metrics(x, y, x, bad(y))
