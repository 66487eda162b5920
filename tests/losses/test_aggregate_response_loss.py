"""AggregateResponseLoss dispatches to the functional losses; bag_dataset adds bag ids and bag-mean responses."""

from __future__ import annotations

import datasets
import pytest
import torch

from hf_margin.functional.aggregate_responses import (
    aggregate_responses,
    bag_level_loss,
    instance_level_loss,
    interpolating_aggregate_loss,
    random_bags,
)
from hf_margin.losses.aggregate_responses import AggregateResponseLoss, bag_dataset


def test_module_matches_functional() -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(12, 1, generator=g)
    ids = random_bags(12, 3)
    ybar = aggregate_responses(torch.randn(12, generator=g), ids)
    torch.testing.assert_close(AggregateResponseLoss("bag")(f, ids, ybar), bag_level_loss(f, ids, ybar))
    torch.testing.assert_close(
        AggregateResponseLoss("instance", reduction="sum")(f, ids, ybar), instance_level_loss(f, ids, ybar, "sum")
    )
    torch.testing.assert_close(
        AggregateResponseLoss("interpolating", rho=0.2)(f, ids, ybar), interpolating_aggregate_loss(f, ids, ybar, 0.2)
    )
    assert "rho=0.2" in repr(AggregateResponseLoss("interpolating", rho=0.2))
    with pytest.raises(ValueError, match="level"):
        AggregateResponseLoss("row")
    with pytest.raises(ValueError, match="rho"):
        AggregateResponseLoss("interpolating", rho=-0.1)
    with pytest.raises(ValueError, match="reduction"):
        AggregateResponseLoss(reduction="avg")


def test_bag_dataset_adds_bag_means_and_hides_responses() -> None:
    rows = datasets.Dataset.from_dict({"x": list(range(10)), "label": [float(i) ** 2 for i in range(10)]})
    bagged = bag_dataset(rows, bag_size=4, seed=1)
    assert bagged.column_names == ["x", "bag_id", "bag_response"]
    ids = torch.tensor(bagged["bag_id"])
    assert torch.equal(torch.bincount(ids), torch.tensor([4, 4, 2]))
    truth = torch.tensor(rows["label"], dtype=torch.float64)
    for a in range(3):
        expected = truth[ids == a].mean().item()
        assert all(abs(v - expected) < 1e-12 for v in torch.tensor(bagged["bag_response"])[ids == a].tolist())
    assert "label" in bag_dataset(rows, 4, keep_responses=True).column_names
    with pytest.raises(ValueError, match="response_column"):
        bag_dataset(rows, 4, response_column="y")
