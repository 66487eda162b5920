"""The margin heads with state of their own under DDP and FSDP2 (2 spawned gloo processes, `fully_shard` on CPU):
AdaFace's norm statistics stay those of one process on the whole batch, and Partial FC's centres stay out of the
wrapper (their own sharding by class) while the backbone is wrapped; weights equal one process in both."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from hf_margin.heads import AdaFaceHead, PartialFCHead
from hf_margin.heads.partial_fc import shard_range
from tests.multiprocess import assert_same_weights, join_process_group, run_ranks

BATCH, STEPS, CLASSES, DIM = 8, 2, 6, 8


class Net(nn.Module):
    """A linear backbone and a margin head; the loss of ``(x, labels)``."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Linear(5, DIM)
        self.head = head

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x) * 10, labels)  # norms ~10-30: AdaFace's z varies across rows


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(STEPS * BATCH, 5, generator=g), torch.randint(0, CLASSES, (STEPS * BATCH,), generator=g)


def centres() -> torch.Tensor:
    return torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(4)) * 0.1


def make(head: str, sync: bool = True) -> Net:
    if head == "adaface":
        torch.manual_seed(1)
        return Net(AdaFaceHead(DIM, CLASSES, scale=8.0, t_alpha=0.5, sync_statistics=sync))
    net = Net(PartialFCHead("adaface", DIM, CLASSES, sample_rate=1.0, scale=8.0, t_alpha=0.5))
    with torch.no_grad():
        net.head.weight.copy_(centres()[net.head.class_start : net.head.class_stop])
    return net


def wrap(net: Net, wrapper: str) -> nn.Module:
    """DDP or FSDP2 over the model; Partial FC's centres are left out of either (their gradients must not be
    averaged: every process holds other classes)."""
    own = [net.head.weight] if isinstance(net.head, PartialFCHead) else []
    if wrapper == "ddp":
        if own:
            net.backbone = nn.parallel.DistributedDataParallel(net.backbone)
            return net
        return nn.parallel.DistributedDataParallel(net)
    from torch.distributed.fsdp import fully_shard

    fully_shard(net, ignored_params=set(own))
    return net


def train(model: nn.Module, rows: slice | None = None) -> None:
    x, y = data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(STEPS):
        batch = slice(step * BATCH, (step + 1) * BATCH)
        xb, yb = x[batch], y[batch]
        if rows is not None:
            xb, yb = xb[rows], yb[rows]
        model(xb, yb).backward()
        optimizer.step()
        optimizer.zero_grad()


def state(net: Net) -> dict[str, torch.Tensor]:
    """Parameters (full tensors) and buffers."""
    from torch.distributed.tensor import DTensor

    tensors = dict(net.named_parameters()) | dict(net.named_buffers())
    return {
        name.replace("_fsdp_wrapped_module.", "").replace(".module.", "."): (
            t.full_tensor() if isinstance(t, DTensor) else t
        )
        .detach()
        .clone()
        for name, t in tensors.items()
    }


RUNS = [("adaface", "ddp", True), ("adaface", "fsdp2", True), ("adaface", "ddp", False)]
RUNS += [("partial_fc", "ddp", True), ("partial_fc", "fsdp2", True)]


def _train_one_rank(rank: int, world: int, port: int, queue: Any) -> None:
    """Every run of RUNS in one process group (one start-up); numpy results keyed by run."""
    from torch.distributed.tensor import DTensor

    join_process_group(rank, world, port)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    results = {}
    for head, wrapper, sync in RUNS:
        net = make(head, sync)
        train(wrap(net, wrapper), slice(rank * BATCH // world, (rank + 1) * BATCH // world))
        result: dict[str, Any] = {k: v.numpy() for k, v in state(net).items()}
        result["centres_are_plain"] = not isinstance(net.head.weight, DTensor)
        result["shard"] = shard_range(CLASSES, rank, world)
        results[head, wrapper, sync] = result
    queue.put((rank, results))


@pytest.fixture(scope="module")
def two_processes() -> dict[int, Any]:
    return run_ranks(_train_one_rank, timeout=300)


def _single(head: str) -> dict[str, torch.Tensor]:
    net = make(head)
    train(net)
    return state(net)


@pytest.mark.parametrize("wrapper", ["ddp", "fsdp2"])
def test_adaface_statistics_and_weights_equal_one_process(two_processes: dict[int, Any], wrapper: str) -> None:
    """mu and sigma (EMA weight 0.5, so a wrong batch shows) and the weights after 2 steps equal one process on
    the whole batch on both ranks; with ``sync_statistics=False`` (DDP) they do not (rank 0's half wins)."""
    single = _single("adaface")
    assert not torch.equal(single["head.batch_mean"], torch.tensor(AdaFaceHead.INITIAL_MEAN))
    for rank in range(2):
        got = two_processes[rank]["adaface", wrapper, True]
        assert_same_weights([single[k] for k in sorted(single)], [got[k] for k in sorted(single)])
    means = [float(two_processes[rank]["adaface", "ddp", False]["head.batch_mean"]) for rank in range(2)]
    assert min(abs(m - float(single["head.batch_mean"])) for m in means) > 1e-3


@pytest.mark.parametrize("wrapper", ["ddp", "fsdp2"])
def test_partial_fc_centres_stay_out_of_the_wrapper(two_processes: dict[int, Any], wrapper: str) -> None:
    """Partial FC (AdaFace margin) with the backbone wrapped and the centres ignored by the wrapper: each rank's
    centres are its rows of one process's centres after 2 steps, the backbone equals one process's, and the
    centres are plain tensors (FSDP2 did not shard them)."""
    single = _single("partial_fc")
    for rank in range(2):
        got = two_processes[rank]["partial_fc", wrapper, True]
        assert got["centres_are_plain"]
        start, stop = got["shard"]
        torch.testing.assert_close(torch.as_tensor(got["head.weight"]), single["head.weight"][start:stop])
        for name in ("backbone.weight", "backbone.bias", "head.margin_head.batch_mean", "head.margin_head.batch_std"):
            torch.testing.assert_close(torch.as_tensor(got[name]), single[name], atol=1e-6, rtol=1e-5)
    assert not torch.equal(single["head.weight"], centres())
