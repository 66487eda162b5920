"""ProtoTripletLoss and ICNNLoss modules (arXiv 2305.09062): equal to their functional twins, trainable in an
episode, options checked."""

from __future__ import annotations

import pytest
import torch

from hf_margin.functional.few_shot import icnn_loss, proto_triplet_loss
from hf_margin.losses import ICNNLoss, ProtoTripletLoss


def episode(seed: int = 0, ways: int = 3, shots: int = 2, queries: int = 3) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(ways, 4, generator=g)
    support_y = torch.arange(ways).repeat_interleave(shots)
    query_y = torch.arange(ways).repeat_interleave(queries)
    support = centres[support_y] + torch.randn(len(support_y), 4, generator=g)
    query = centres[query_y] + torch.randn(len(query_y), 4, generator=g)
    return support, support_y, query, query_y


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_proto_triplet_module_is_its_function(reduction: str) -> None:
    support, support_y, query, query_y = episode()
    module = ProtoTripletLoss(margin=0.3, reduction=reduction)
    expected = proto_triplet_loss(support, support_y, query, query_y, 0.3, 1e-6, reduction)
    torch.testing.assert_close(module(support, support_y, query, query_y), expected)


def test_icnn_module_is_its_function_in_the_papers_variants() -> None:
    support, support_y, query, query_y = episode(1)
    points, labels = torch.cat([support, query]), torch.cat([support_y, query_y])
    full = ICNNLoss(ipc=5)(points, labels)
    torch.testing.assert_close(full, icnn_loss(points, labels, ipc=5))
    query_variant = ICNNLoss(k=2)(query, query_y, support, support_y)
    torch.testing.assert_close(query_variant, icnn_loss(query, query_y, support, support_y, k=2))


def test_a_few_steps_on_both_losses_lower_them() -> None:
    support, support_y, query, query_y = episode(2)
    projection = torch.nn.Linear(4, 4)
    triplet, icnn = ProtoTripletLoss(), ICNNLoss(ipc=5)
    optimizer = torch.optim.SGD(projection.parameters(), lr=0.05)

    def total() -> torch.Tensor:
        s, q = projection(support), projection(query)
        return triplet(s, support_y, q, query_y) + icnn(torch.cat([s, q]), torch.cat([support_y, query_y]))

    before = float(total().detach())
    for _ in range(30):
        optimizer.zero_grad()
        total().backward()
        optimizer.step()
    assert float(total().detach()) < before


def test_module_options_are_checked() -> None:
    with pytest.raises(ValueError, match="`margin`"):
        ProtoTripletLoss(margin=-0.1)
    with pytest.raises(ValueError, match="`reduction`"):
        ProtoTripletLoss(reduction="max")
    with pytest.raises(ValueError, match="`k`"):
        ICNNLoss(k=0)
    with pytest.raises(ValueError, match="`ipc`"):
        ICNNLoss(ipc=0)
