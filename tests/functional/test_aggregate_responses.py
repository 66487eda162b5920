"""Aggregate-response losses (arXiv 2401.11081): values against hand-written sums, the decomposition identity,
the interpolating loss's two ends, bag size 1, gradients, random bags, extremes and errors."""

from __future__ import annotations

import pytest
import torch

from hf_margin.functional.aggregate_responses import (
    aggregate_responses,
    bag_level_loss,
    instance_level_loss,
    interpolating_aggregate_loss,
    random_bags,
)


def bags(rows: int = 12, bag_size: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(rows, generator=g, dtype=torch.float64, requires_grad=True)
    ids = random_bags(rows, bag_size, seed)
    y = torch.randn(rows, generator=g, dtype=torch.float64)
    return f, ids, aggregate_responses(y, ids)


def test_values_equal_hand_written_sums_and_decomposition() -> None:
    f, ids, ybar = bags(11, 4)  # sizes 4, 4, 3
    fbar = torch.stack([f[ids == a].mean() for a in range(3)])
    bag = sum((ybar[a] - fbar[a]) ** 2 for a in range(3))
    inst = sum(((ybar[a] - f[ids == a]) ** 2).sum() for a in range(3))
    dispersion = sum(((f[ids == a] - fbar[a]) ** 2).sum() for a in range(3))
    sizes = torch.bincount(ids).double()
    torch.testing.assert_close(bag_level_loss(f, ids, ybar, "sum"), bag)
    torch.testing.assert_close(bag_level_loss(f, ids, ybar), bag / 3)
    torch.testing.assert_close(instance_level_loss(f, ids, ybar, "sum"), inst)
    torch.testing.assert_close(instance_level_loss(f, ids, ybar), inst / 11)
    # L_inst = sum_a k_a (ybar_a - fbar_a)^2 + R(f)
    torch.testing.assert_close(inst, (sizes * (ybar - fbar) ** 2).sum() + dispersion)
    torch.testing.assert_close(
        interpolating_aggregate_loss(f, ids, ybar, 0.25, "sum"), (sizes * (ybar - fbar) ** 2).sum() + 0.25 * dispersion
    )


def test_interpolating_ends_are_bag_and_instance() -> None:
    f, ids, ybar = bags(12, 4)
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(
            interpolating_aggregate_loss(f, ids, ybar, 1.0, reduction), instance_level_loss(f, ids, ybar, reduction)
        )
    torch.testing.assert_close(interpolating_aggregate_loss(f, ids, ybar, 0.0), bag_level_loss(f, ids, ybar))
    torch.testing.assert_close(
        interpolating_aggregate_loss(f, ids, ybar, 0.0, "sum"), 4 * bag_level_loss(f, ids, ybar, "sum")
    )
    # it is the convex combination of the two (sum over rows)
    rho = 0.3
    torch.testing.assert_close(
        interpolating_aggregate_loss(f, ids, ybar, rho, "sum"),
        (1 - rho) * 4 * bag_level_loss(f, ids, ybar, "sum") + rho * instance_level_loss(f, ids, ybar, "sum"),
    )


def test_bag_size_one_makes_all_three_plain_mse() -> None:
    g = torch.Generator().manual_seed(1)
    f, y = torch.randn(9, generator=g, dtype=torch.float64), torch.randn(9, generator=g, dtype=torch.float64)
    ids = random_bags(9, 1, seed=3)
    ybar = aggregate_responses(y, ids)
    mse = torch.nn.functional.mse_loss(f, y)
    for loss in (
        bag_level_loss(f, ids, ybar),
        instance_level_loss(f, ids, ybar),
        interpolating_aggregate_loss(f, ids, ybar, 0.6),
    ):
        torch.testing.assert_close(loss, mse)


def test_equal_predictions_in_a_bag_give_equal_gradients() -> None:
    ids = torch.tensor([0, 0, 0, 1, 1, 1])
    ybar = torch.tensor([0.5, -1.0], dtype=torch.float64)
    f = torch.tensor([2.0, 2.0, 2.0, 0.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    (g_inst,) = torch.autograd.grad(instance_level_loss(f, ids, ybar, "sum"), f)
    (g_bag,) = torch.autograd.grad(3 * bag_level_loss(f, ids, ybar, "sum"), f)
    torch.testing.assert_close(g_inst, g_bag)


@pytest.mark.parametrize("rho", [0.0, 0.4, 1.0])
def test_gradcheck(rho: float) -> None:
    f, ids, ybar = bags(10, 3, seed=2)
    ybar = ybar.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, t: interpolating_aggregate_loss(p, ids, t, rho), (f, ybar))
    assert torch.autograd.gradcheck(lambda p, t: bag_level_loss(p, ids, t), (f, ybar))


def test_random_bags_partition_and_extremes() -> None:
    ids = random_bags(10, 4, seed=0)
    assert torch.equal(torch.bincount(ids), torch.tensor([4, 4, 2]))
    assert not torch.equal(ids, random_bags(10, 4, seed=1))
    assert torch.equal(ids, random_bags(10, 4, seed=0))
    f = torch.tensor([1e15, -1e15, 3e15], requires_grad=True)
    loss = interpolating_aggregate_loss(f, torch.tensor([0, 0, 1]), torch.tensor([0.0, -1e15]), 0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(f.grad).all()
    half = torch.randn(8, dtype=torch.bfloat16)
    assert bag_level_loss(half, random_bags(8, 2), torch.zeros(4, dtype=torch.bfloat16)).dtype == torch.float32
    column = torch.randn(8, 1, dtype=torch.float64)
    torch.testing.assert_close(
        bag_level_loss(column, random_bags(8, 2), torch.zeros(4, dtype=torch.float64)),
        bag_level_loss(column[:, 0], random_bags(8, 2), torch.zeros(4, dtype=torch.float64)),
    )


def test_errors_name_the_argument() -> None:
    f, ids, ybar = bags(12, 4)
    with pytest.raises(ValueError, match="bag_responses"):
        bag_level_loss(f, ids, ybar[:2])
    with pytest.raises(TypeError, match="bag_responses"):
        bag_level_loss(f, ids, ybar.long())
    with pytest.raises(ValueError, match="bag_ids"):
        instance_level_loss(f, ids[:5], ybar)
    with pytest.raises(TypeError, match="bag_ids"):
        instance_level_loss(f, ids.float(), ybar)
    with pytest.raises(ValueError, match="bags \\[1\\] have no rows"):
        instance_level_loss(f[:4], torch.tensor([0, 0, 2, 2]), ybar)
    with pytest.raises(ValueError, match="bag_ids"):
        instance_level_loss(f[:2], torch.tensor([0, -1]), ybar[:1])
    with pytest.raises(ValueError, match="predictions"):
        bag_level_loss(f.reshape(3, 4), ids, ybar)
    with pytest.raises(TypeError, match="predictions"):
        bag_level_loss(ids, ids, ybar)
    with pytest.raises(ValueError, match="rho"):
        interpolating_aggregate_loss(f, ids, ybar, 1.5)
    with pytest.raises(ValueError, match="reduction"):
        bag_level_loss(f, ids, ybar, "max")
    with pytest.raises(ValueError, match="bag_size"):
        random_bags(10, 0)
    with pytest.raises(ValueError, match="num_rows"):
        random_bags(0, 2)
