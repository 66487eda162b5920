"""Aggregate-response loss module (Javanmard et al., "Learning from Aggregate Responses: Instance Level versus Bag
Level Loss Functions", ICLR 2024, arXiv 2401.11081) and a bagging utility for `datasets.Dataset`; math in
`hf_margin.functional.aggregate_responses`."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from hf_margin._reduction import REDUCTIONS
from hf_margin._validation import check_choice, check_number_in_range
from hf_margin.functional.aggregate_responses import (
    aggregate_responses,
    bag_level_loss,
    instance_level_loss,
    interpolating_aggregate_loss,
    random_bags,
)

LEVELS = ("bag", "instance", "interpolating")


class AggregateResponseLoss(nn.Module):
    """Square loss against bag-mean responses: bag-level ``(ybar_a - fbar_a)^2``, instance-level
    ``(ybar_a - f_i)^2`` or interpolating ``(1 - rho) (ybar_a - fbar_a)^2 + rho (ybar_a - f_i)^2`` per row (rho:
    our reading; summed over a bag, ``k_a (ybar_a - fbar_a)^2 + rho sum_i (f_i - fbar_a)^2``).

    Args:
        level: "bag", "instance" or "interpolating".
        rho: the interpolating loss's weight in [0, 1] on the within-bag dispersion (0: bag, 1: instance);
            only used with level "interpolating".
        reduction: "mean" (over bags for "bag", over rows otherwise), "sum" or "none".

    Example:
        >>> loss = AggregateResponseLoss("interpolating", rho=0.5)
        >>> loss(model(x).squeeze(1), bag_ids, bag_responses).backward()
    """

    def __init__(self, level: str = "instance", rho: float = 0.5, reduction: str = "mean") -> None:
        super().__init__()
        check_choice(level, "level", LEVELS)
        check_number_in_range(rho, "rho", 0.0, 1.0)
        check_choice(reduction, "reduction", REDUCTIONS)
        self.level, self.rho, self.reduction = level, rho, reduction

    def forward(self, predictions: Tensor, bag_ids: Tensor, bag_responses: Tensor) -> Tensor:
        if self.level == "bag":
            return bag_level_loss(predictions, bag_ids, bag_responses, self.reduction)
        if self.level == "instance":
            return instance_level_loss(predictions, bag_ids, bag_responses, self.reduction)
        return interpolating_aggregate_loss(predictions, bag_ids, bag_responses, self.rho, self.reduction)

    def extra_repr(self) -> str:
        rho = f", rho={self.rho}" if self.level == "interpolating" else ""
        return f"level={self.level!r}{rho}, reduction={self.reduction!r}"


def bag_dataset(
    dataset: Any, bag_size: int, response_column: str = "label", seed: int = 0, keep_responses: bool = False
) -> Any:
    """`dataset` (a `datasets.Dataset`) with random bags: columns "bag_id" and "bag_response" (the bag's mean
    response on each of its rows); the individual responses are dropped unless `keep_responses`.

    Example:
        >>> bags = bag_dataset(Dataset.from_dict({"x": xs, "label": ys}), bag_size=4)
    """
    import torch

    if response_column not in dataset.column_names:
        raise ValueError(
            f"`response_column` {response_column!r} is not a column of the dataset; columns: {dataset.column_names}"
        )
    responses = torch.as_tensor(dataset[response_column], dtype=torch.float64)
    bag_ids = random_bags(len(dataset), bag_size, seed)
    per_row = aggregate_responses(responses, bag_ids)[bag_ids]
    bagged = dataset.add_column("bag_id", bag_ids.tolist()).add_column("bag_response", per_row.tolist())
    return bagged if keep_responses else bagged.remove_columns(response_column)
