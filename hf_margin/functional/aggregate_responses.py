"""Learning from aggregate responses: bag-level, instance-level and interpolating square losses, and random bags.

Paper: Javanmard, Chen, Mirrokni, Badanidiyuru, Fu, "Learning from Aggregate Responses: Instance Level versus Bag
Level Loss Functions" (ICLR 2024, arXiv 2401.11081). Rows are grouped into bags ``B_a``; only each bag's mean
response ``ybar_a`` is observed. With ``fbar_a`` the bag's mean prediction:

- bag-level: ``(ybar_a - fbar_a)^2`` per bag;
- instance-level: ``(ybar_a - f_i)^2`` per row i of bag a;
- since ``sum_{i in B_a} (ybar_a - f_i)^2 = k_a (ybar_a - fbar_a)^2 + sum_{i in B_a} (f_i - fbar_a)^2``, the
  instance loss is the bag loss plus a within-bag prediction-dispersion regulariser; the interpolating loss
  ``sum_a k_a (ybar_a - fbar_a)^2 + rho sum_a sum_{i in B_a} (f_i - fbar_a)^2`` weights that regulariser by rho.
  Per row we write it as ``(1 - rho) (ybar_a - fbar_a)^2 + rho (ybar_a - f_i)^2`` (same sum over each bag): rho = 0
  is the bag-level loss with each row counting once (each bag weighted by its size; the plain bag mean when bags
  have equal sizes), rho = 1 the instance-level loss, row by row.

Our choices, not the paper's (its exact parametrisation of rho was not found): rho in [0, 1] weights the
dispersion term as above. Only the square loss is implemented. The paper's differentially private
mechanism is not implemented (its form was not found).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._reduction import REDUCTIONS, reduce_losses
from hf_margin._validation import check_choice, check_label_vector, check_number_in_range, check_positive_int


def _check_predictions(predictions: object, name: str = "predictions") -> Tensor:
    if not isinstance(predictions, Tensor) or not predictions.is_floating_point():
        got = f"dtype {predictions.dtype}" if isinstance(predictions, Tensor) else type(predictions).__name__
        raise TypeError(f"`{name}` must be a floating tensor of shape (rows,) or (rows, 1), got {got}")
    if predictions.dim() == 2 and predictions.shape[1] == 1:
        predictions = predictions.squeeze(1)
    if predictions.dim() != 1 or predictions.shape[0] == 0:
        raise ValueError(
            f"`{name}` must have shape (rows,) or (rows, 1) with rows >= 1, got shape {tuple(predictions.shape)}"
        )
    return predictions


def _check_bags(bag_ids: object, rows: int) -> tuple[Tensor, Tensor]:
    """`bag_ids` checked as (rows,) integers in [0, B) with no empty bag; returns them and the (B,) bag sizes."""
    ids = check_label_vector(bag_ids, rows, "bag_ids", kind="bag indices")
    if int(ids.min()) < 0:
        raise ValueError(f"`bag_ids` must be >= 0, got a minimum of {int(ids.min())}")
    sizes = torch.bincount(ids)
    if (sizes == 0).any():
        empty = torch.nonzero(sizes == 0).flatten().tolist()
        raise ValueError(f"`bag_ids` must number the bags 0..B-1 with none empty; bags {empty} have no rows")
    return ids, sizes


def aggregate_responses(responses: Tensor, bag_ids: Tensor) -> Tensor:
    """(B,) mean of `responses` (rows,) over each bag; differentiable (also gives ``fbar_a`` from predictions).

    Example:
        >>> aggregate_responses(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 1]))  # tensor([2., 5.])
    """
    values = _check_predictions(responses, "responses")
    ids, sizes = _check_bags(bag_ids, values.shape[0])
    values = at_least_float32(values)
    totals = torch.zeros(len(sizes), dtype=values.dtype, device=values.device).index_add(0, ids, values)
    return totals / sizes.to(values)


def random_bags(num_rows: int, bag_size: int, seed: int = 0) -> Tensor:
    """(num_rows,) bag ids of a seeded random partition into bags of `bag_size` rows (the last one holds the
    remainder when `bag_size` does not divide `num_rows`).

    Example:
        >>> bag_ids = random_bags(len(y), bag_size=4)
        >>> bag_responses = aggregate_responses(y, bag_ids)  # all a learner sees of y
    """
    check_positive_int(num_rows, "num_rows")
    check_positive_int(bag_size, "bag_size")
    order = torch.randperm(num_rows, generator=torch.Generator().manual_seed(seed))
    return torch.empty(num_rows, dtype=torch.long).index_put_((order,), torch.arange(num_rows) // bag_size)


def _bag_terms(predictions: Tensor, bag_ids: Tensor, bag_responses: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Checked (rows,) predictions, bag ids, the (B,) bag-mean predictions and the (B,) responses."""
    f = _check_predictions(predictions)
    ids, sizes = _check_bags(bag_ids, f.shape[0])
    if not isinstance(bag_responses, Tensor) or not bag_responses.is_floating_point():
        raise TypeError(f"`bag_responses` must be a floating tensor of shape ({len(sizes)},) (one per bag)")
    if tuple(bag_responses.shape) != (len(sizes),):
        raise ValueError(
            f"`bag_responses` must have shape ({len(sizes)},) (one per bag), got {tuple(bag_responses.shape)}"
        )
    f = at_least_float32(f)
    return f, ids, aggregate_responses(f, ids), bag_responses.to(f)


def bag_level_loss(predictions: Tensor, bag_ids: Tensor, bag_responses: Tensor, reduction: str = "mean") -> Tensor:
    """Bag-level square loss ``(ybar_a - fbar_a)^2`` per bag (B,), reduced over bags.

    Args:
        predictions: (rows,) or (rows, 1) model outputs f(x_i).
        bag_ids: (rows,) bag index of each row, bags numbered 0..B-1.
        bag_responses: (B,) aggregate (mean) response of each bag.
        reduction: "mean" over bags, "sum" or "none" ((B,)).

    Example:
        >>> bag_level_loss(model(x).squeeze(1), bag_ids, bag_responses)
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    _, _, bag_predictions, targets = _bag_terms(predictions, bag_ids, bag_responses)
    return reduce_losses((bag_predictions - targets) ** 2, reduction)


def instance_level_loss(predictions: Tensor, bag_ids: Tensor, bag_responses: Tensor, reduction: str = "mean") -> Tensor:
    """Instance-level square loss ``(ybar_a - f_i)^2`` per row (rows,), reduced over rows (Args as
    `bag_level_loss`; "none" gives (rows,))."""
    check_choice(reduction, "reduction", REDUCTIONS)
    f, ids, _, targets = _bag_terms(predictions, bag_ids, bag_responses)
    return reduce_losses((f - targets[ids]) ** 2, reduction)


def interpolating_aggregate_loss(
    predictions: Tensor, bag_ids: Tensor, bag_responses: Tensor, rho: float = 0.5, reduction: str = "mean"
) -> Tensor:
    """Interpolating loss ``(1 - rho) (ybar_a - fbar_a)^2 + rho (ybar_a - f_i)^2`` per row (rows,), reduced over
    rows; summed over a bag it is ``k_a (ybar_a - fbar_a)^2 + rho sum_i (f_i - fbar_a)^2``.

    rho = 1 is `instance_level_loss`; rho = 0 is the bag-level loss with each row counting once (with equal bag
    sizes, the "mean" equals `bag_level_loss`'s "mean"). rho's form is our reading (see the module docstring).

    Args:
        predictions, bag_ids, bag_responses: as in `bag_level_loss`.
        rho: weight in [0, 1] of the within-bag dispersion of the predictions.
        reduction: "mean" over rows, "sum" or "none" ((rows,)).

    Example:
        >>> interpolating_aggregate_loss(model(x).squeeze(1), bag_ids, bag_responses, rho=0.5)
    """
    check_number_in_range(rho, "rho", 0.0, 1.0)
    check_choice(reduction, "reduction", REDUCTIONS)
    f, ids, bag_predictions, targets = _bag_terms(predictions, bag_ids, bag_responses)
    fbar = bag_predictions[ids]
    target = targets[ids]
    return reduce_losses((1.0 - rho) * (fbar - target) ** 2 + rho * (f - target) ** 2, reduction)
