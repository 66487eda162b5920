"""TemperatureInfoNCELoss against pytorch-metric-learning 2.9's NTXentLoss on identical inputs (labels, pair and
triplet tuples, ref_emb), its documented difference (PML's capped log), reductions, and two gloo processes giving
the single-process loss and gradient."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.distributed as dist

from hf_margin.losses.temperature_info_nce import TemperatureInfoNCELoss
from tests.multiprocess import run_ranks

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")


def views(seed: int = 0, images: int = 6, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(images, dim, generator=g, dtype=torch.float64)
    two = torch.cat([x + 0.3 * torch.randn(images, dim, generator=g, dtype=torch.float64), x])
    return two, torch.arange(images).repeat(2)


def _both(embeddings: torch.Tensor, tau: float, *args, **kwargs) -> tuple[torch.Tensor, ...]:
    ours_x, pml_x = embeddings.clone().requires_grad_(True), embeddings.clone().requires_grad_(True)
    ours = TemperatureInfoNCELoss(tau)(ours_x, *args, **kwargs)
    anchor = pml_losses.NTXentLoss(temperature=tau)(pml_x, *args, **kwargs)
    ours.backward()
    anchor.backward()
    return ours, anchor, ours_x.grad, pml_x.grad


@pytest.mark.parametrize("tau", [0.07, 0.2, 1.0])
def test_matches_ntxent_on_simclr_views_and_multi_positive_labels(tau: float) -> None:
    for embeddings, labels in (views(), (torch.randn(12, 8, dtype=torch.float64), torch.tensor([0, 1, 2] * 4))):
        ours, anchor, grad, anchor_grad = _both(embeddings, tau, labels)
        torch.testing.assert_close(ours, anchor, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad, anchor_grad, rtol=1e-8, atol=1e-12)


def test_matches_ntxent_with_index_tuples_and_a_reference_set() -> None:
    embeddings, labels = views(1)
    a1, p = torch.tensor([0, 1, 2, 2]), torch.tensor([6, 7, 8, 3])
    a2, n = torch.tensor([0, 0, 1, 2, 2]), torch.tensor([1, 2, 3, 4, 9])
    for indices in ((a1, p, a2, n), (torch.tensor([0, 1, 4]), torch.tensor([6, 7, 10]), torch.tensor([3, 2, 5]))):
        ours, anchor, grad, anchor_grad = _both(embeddings, 0.1, labels, indices)
        torch.testing.assert_close(ours, anchor, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad, anchor_grad, rtol=1e-8, atol=1e-12)
    ref, ref_labels = torch.randn(9, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 2])
    ours, anchor, grad, anchor_grad = _both(embeddings, 0.1, labels, ref_emb=ref, ref_labels=ref_labels)
    torch.testing.assert_close(ours, anchor, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, anchor_grad, rtol=1e-8, atol=1e-12)


def test_documented_difference_pml_caps_the_log_at_its_tiny_float() -> None:
    embeddings = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])  # the positive pair (0, 1) is opposite
    labels = torch.tensor([0, 0, 1])
    ours = TemperatureInfoNCELoss(0.01)(embeddings, labels)
    anchor = pml_losses.NTXentLoss(temperature=0.01)(embeddings, labels)
    # Pair (0, 1): s = -1 against the negative (0, 2) at s = 1, loss 200; pair (1, 0): s = -1 against (1, 2) at -1,
    # loss log 2. PML's first pair is capped at -log(tiny) = 87.34.
    cap = -math.log(torch.finfo(torch.float32).tiny)
    assert ours.item() == pytest.approx((200.0 + math.log(2)) / 2, rel=1e-5)
    assert anchor.item() == pytest.approx((cap + math.log(2)) / 2, rel=1e-5)


def test_reductions_and_no_positive_pair() -> None:
    embeddings, labels = views(2)
    loss = TemperatureInfoNCELoss(0.2, reduction="none")(embeddings, labels)
    assert loss.shape == (12,)
    torch.testing.assert_close(TemperatureInfoNCELoss(0.2, reduction="sum")(embeddings, labels), loss.sum())
    torch.testing.assert_close(TemperatureInfoNCELoss(0.2)(embeddings, labels), loss.sum() / 12)
    x = embeddings.clone().requires_grad_(True)
    zero = TemperatureInfoNCELoss(0.2)(x, torch.arange(12))
    zero.backward()
    assert zero == 0 and (x.grad == 0).all()


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="`temperature`"):
        TemperatureInfoNCELoss(0.0)
    with pytest.raises(ValueError, match="`reduction`"):
        TemperatureInfoNCELoss(reduction="avg")
    with pytest.raises(ValueError, match="`labels`"):
        TemperatureInfoNCELoss()(torch.randn(4, 3), torch.tensor([0, 1]))


def _rank(rank: int, world: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    embeddings, labels = views(3)
    rows = slice(rank * 6, rank * 6 + 6)
    x = embeddings[rows].clone().requires_grad_(True)
    loss = TemperatureInfoNCELoss(0.1, gather_across_processes=True)(x, labels[rows])
    loss.backward()
    queue.put((rank, (loss.item(), x.grad)))


@pytest.mark.heavy  # spawns two processes: 31 s on the loaded 2-core machine
def test_two_processes_equal_one_big_batch() -> None:
    results = run_ranks(_rank)
    embeddings, labels = views(3)
    x = embeddings.clone().requires_grad_(True)
    full = TemperatureInfoNCELoss(0.1)(x, labels)
    full.backward()
    assert sum(value for value, _ in results.values()) / 2 == pytest.approx(full.item(), rel=1e-10)
    # Each rank's rows get the gradient of every rank's loss; DDP's average over ranks divides by the world size.
    grads = torch.cat([results[0][1], results[1][1]]) / 2
    torch.testing.assert_close(grads, x.grad)
