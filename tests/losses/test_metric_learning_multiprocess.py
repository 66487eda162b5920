"""Two gloo processes x batch B with `gather_across_processes` give the gradients (and, averaged over ranks, the
loss) of one process x batch 2B: Multi-Similarity (with the gathering miner) and TCM."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from hf_margin.losses.multi_similarity import MultiSimilarityLoss, MultiSimilarityMiner
from hf_margin.losses.tcm import ThresholdConsistentMarginLoss
from tests.multiprocess import run_ranks

ROWS = 12


def inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(ROWS, 5, generator=generator, dtype=torch.float64)
    weight = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 3, 2, 0, 3, 1, 4, 2])
    return features, weight, labels


def losses(gather: bool) -> list[tuple[str, torch.nn.Module, MultiSimilarityMiner | None]]:
    return [
        ("ms_all_pairs", MultiSimilarityLoss(beta=10.0, gather_across_processes=gather), None),
        ("ms_mined", MultiSimilarityLoss(gather_across_processes=gather), MultiSimilarityMiner(0.3, gather)),
        ("ms_sum", MultiSimilarityLoss(reduction="sum", gather_across_processes=gather), None),
        ("tcm", ThresholdConsistentMarginLoss(margin_plus=0.5, margin_minus=0.0, gather_across_processes=gather), None),
    ]


def value_and_grad(loss_fn, miner, features, weight, labels) -> tuple[torch.Tensor, torch.Tensor]:
    weight = weight.clone().requires_grad_()
    embeddings = features @ weight
    pairs = None if miner is None else miner(embeddings, labels)
    value = loss_fn(embeddings, labels, pairs)
    value.backward()
    return value.detach(), weight.grad


def _rank(rank: int, world: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    features, weight, labels = inputs()
    rows = slice(rank * ROWS // world, (rank + 1) * ROWS // world)
    results = {}
    for name, loss_fn, miner in losses(gather=True):
        value, grad = value_and_grad(loss_fn, miner, features[rows], weight, labels[rows])
        for tensor in (value, grad):  # DDP averages gradients; the logged loss is the ranks' average
            tensor /= world
            dist.all_reduce(tensor)
        results[name] = (value, grad)
    queue.put((rank, results))


def test_two_processes_equal_one_process_on_the_whole_batch() -> None:
    features, weight, labels = inputs()
    expected = {
        name: value_and_grad(loss_fn, miner, features, weight, labels) for name, loss_fn, miner in losses(False)
    }
    results = run_ranks(_rank, timeout=120)
    for rank in range(2):
        for name, (value, grad) in expected.items():
            torch.testing.assert_close(results[rank][name][0], value, msg=f"{name} value")
            torch.testing.assert_close(results[rank][name][1], grad, msg=f"{name} gradient")
            assert grad.abs().sum() > 0
