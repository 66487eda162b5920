"""Partial FC: equal to the full margin head at sample_rate 1 (one process and two gloo processes), sampled
negatives keep every positive and equal the full head on the kept centres, gradcheck, extreme inputs, errors."""

from __future__ import annotations

import itertools
import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from hf_margin.functional.sharded_cross_entropy import NOT_OWNED, sharded_margin_cross_entropy
from hf_margin.heads import AdaFaceHead, ArcFaceHead, CombinedMarginHead, CosFaceHead, ElasticCosFaceHead, MarginHead
from hf_margin.heads.partial_fc import PartialFCHead, sample_centres, shard_range
from tests.multiprocess import run_ranks

D, C, B = 8, 7, 6
FULL_HEADS: list[tuple[str, type[MarginHead], dict[str, object]]] = [
    ("arcface", ArcFaceHead, {"margin": 0.5, "scale": 16.0}),
    ("cosface", CosFaceHead, {"margin": 0.35, "scale": 16.0}),
    ("combined", CombinedMarginHead, {"m1": 1.0, "m2": 0.3, "m3": 0.1, "scale": 16.0}),
    ("adaface", AdaFaceHead, {"margin": 0.4, "scale": 16.0}),
    ("elastic_cosface", ElasticCosFaceHead, {"margin": 0.35, "std": 0.0, "scale": 16.0}),
]


def _batch(dtype: torch.dtype = torch.float32, rows: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(rows, D, generator=generator, dtype=dtype) * 3
    return x, torch.randint(0, C, (rows,), generator=generator)


def _value_and_grads(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    head.zero_grad(set_to_none=True)
    loss = head(x, y)
    loss.sum().backward()
    return loss.detach(), x.grad, head.weight.grad


@pytest.mark.parametrize("name, head_type, kwargs", FULL_HEADS, ids=[h[0] for h in FULL_HEADS])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sample_rate_one_equals_full_head(name: str, head_type: type[MarginHead], kwargs: dict, reduction: str) -> None:
    partial_fc = PartialFCHead(name, D, C, reduction=reduction, **kwargs)
    full = head_type(D, C, reduction=reduction, **kwargs)
    with torch.no_grad():
        full.weight.copy_(partial_fc.weight)
    x, y = _batch()
    for got, expected in zip(_value_and_grads(partial_fc, x, y), _value_and_grads(full, x, y), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_head_class_is_accepted_like_its_name() -> None:
    torch.manual_seed(0)
    by_class = PartialFCHead(CosFaceHead, D, C, margin=0.2)
    torch.manual_seed(0)
    by_name = PartialFCHead("cosface", D, C, margin=0.2)
    x, y = _batch()
    torch.testing.assert_close(by_class(x, y), by_name(x, y))


def test_zero_margin_is_scaled_cosine_cross_entropy() -> None:
    head = PartialFCHead("arcface", D, C, margin=0.0, scale=10.0)
    x, y = _batch(torch.float64)
    cos = F.normalize(x, dim=1) @ F.normalize(head.weight.double(), dim=1).t()
    torch.testing.assert_close(head(x, y), F.cross_entropy(10.0 * cos, y))


# ---------------------------------------------------------------- sampling


def test_sampled_centres_keep_every_positive_and_the_requested_count() -> None:
    torch.manual_seed(0)
    for _ in range(50):
        labels = torch.randint(0, 100, (int(torch.randint(1, 30, ())),))
        index = sample_centres(labels, 100, 0.1)
        assert set(labels.tolist()) <= set(index.tolist())
        assert index.numel() == max(10, labels.unique().numel())
        assert torch.equal(index, index.unique())  # sorted, no repeats
    assert torch.equal(sample_centres(torch.tensor([3]), 5, 1.0), torch.arange(5))


def test_sampled_head_equals_full_head_on_the_kept_centres() -> None:
    classes = 40
    head = PartialFCHead("arcface", D, classes, sample_rate=0.25, margin=0.5, scale=16.0)
    x, y = _batch(rows=6)
    torch.manual_seed(3)
    got = _value_and_grads(head, x, y)
    torch.manual_seed(3)
    index = sample_centres(y, classes, 0.25)
    assert index.numel() == 10 and set(y.tolist()) <= set(index.tolist())
    full = ArcFaceHead(D, index.numel(), margin=0.5, scale=16.0)
    with torch.no_grad():
        full.weight.copy_(head.weight[index])
    loss, grad_x, grad_kept = _value_and_grads(full, x, torch.searchsorted(index, y))
    torch.testing.assert_close(got[0], loss)
    torch.testing.assert_close(got[1], grad_x)
    torch.testing.assert_close(got[2][index], grad_kept)
    dropped = torch.ones(classes, dtype=torch.bool)
    dropped[index] = False
    assert torch.count_nonzero(got[2][dropped]) == 0


def test_eval_mode_scores_every_centre() -> None:
    head = PartialFCHead("cosface", D, C, sample_rate=0.2).eval()
    full = CosFaceHead(D, C)
    with torch.no_grad():
        full.weight.copy_(head.weight)
    x, y = _batch()
    torch.testing.assert_close(head(x, y), full(x, y))


def test_shard_ranges_tile_the_classes() -> None:
    for classes, world in [(7, 2), (10, 3), (4, 4), (1_000_003, 8)]:
        ranges = [shard_range(classes, rank, world) for rank in range(world)]
        assert ranges[0][0] == 0 and ranges[-1][1] == classes
        assert all(stop == start for (_, stop), (start, _) in itertools.pairwise(ranges))
        assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


# ---------------------------------------------------------------- gradients and numerics


def test_sharded_cross_entropy_gradcheck() -> None:
    generator = torch.Generator().manual_seed(0)
    cosine = torch.rand(4, 5, generator=generator, dtype=torch.float64).mul(2).sub(1).requires_grad_()
    target = torch.rand(4, generator=generator, dtype=torch.float64).requires_grad_()
    labels = torch.tensor([0, 4, 2, 2])
    for reduction in ("mean", "sum", "none"):
        assert torch.autograd.gradcheck(
            lambda c, t, r=reduction: sharded_margin_cross_entropy(c, t, labels, 3.0, r), (cosine, target)
        )


def test_sharded_cross_entropy_without_processes_is_cross_entropy() -> None:
    cosine, target = torch.rand(4, 5) * 2 - 1, torch.rand(4)
    labels = torch.tensor([0, 4, 2, 2])
    logits = (cosine * 8).scatter(1, labels.unsqueeze(1), 8 * target.unsqueeze(1))
    torch.testing.assert_close(
        sharded_margin_cross_entropy(cosine, target, labels, 8.0), F.cross_entropy(logits, labels)
    )
    assert NOT_OWNED < 0


@pytest.mark.parametrize("sample_rate", [1.0, 0.5])
def test_head_gradcheck(sample_rate: float) -> None:
    head = PartialFCHead("arcface", D, C, sample_rate=sample_rate, margin=0.5, scale=4.0).double()
    x, y = _batch(torch.float64)
    x.requires_grad_()

    def loss(embeddings: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)  # the same negatives at every call
        return torch.func.functional_call(head, {"weight": weight}, (embeddings, y))

    assert torch.autograd.gradcheck(loss, (x, head.weight.detach().clone().requires_grad_()))


def test_extreme_inputs_stay_finite() -> None:
    head = PartialFCHead("arcface", D, C, sample_rate=0.5, margin=0.5, scale=64.0)
    y = torch.tensor([0, 1, 2, 3])
    cases = [
        head.weight.detach()[y] * 1e6,  # cos = 1 with the target centre, huge norms
        -head.weight.detach()[y],  # cos = -1
        torch.zeros(4, D),
        torch.full((4, D), 1e30),
    ]
    for x in cases:
        loss, grad_x, grad_w = _value_and_grads(head, x, y)
        assert torch.isfinite(loss).all() and torch.isfinite(grad_x).all() and torch.isfinite(grad_w).all()


def test_bfloat16_autocast_gives_float32_loss_and_keeps_centres_float32() -> None:
    head = PartialFCHead("cosface", D, C, sample_rate=0.5)
    x, y = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = head(x.bfloat16(), y)
    assert loss.dtype == torch.float32 and head.weight.dtype == torch.float32
    assert torch.isfinite(loss)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"margin_head": "softmax"}, "margin_head"),
        ({"margin_head": "nope"}, "margin_head"),
        ({"margin_head": torch.nn.Linear}, "margin_head"),
        ({"sample_rate": 0.0}, "sample_rate"),
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"num_classes": 0}, "num_classes"),
        ({"embedding_size": -1}, "embedding_size"),
        ({"reduction": "max"}, "reduction"),
        ({"margin": 4.0}, "margin"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    arguments = {"margin_head": "arcface", "embedding_size": D, "num_classes": C, **kwargs}
    with pytest.raises(ValueError, match=match):
        PartialFCHead(**arguments)


@pytest.mark.parametrize("name", ["sample_rate", "margin", "scale"])
def test_wrongly_typed_numbers_raise_a_type_error_naming_them(name: str) -> None:
    with pytest.raises(TypeError, match=f"`{name}` must be a real number"):
        PartialFCHead("arcface", D, C, **{name: "0.5"})


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_any_integer_label_dtype_gives_the_long_labels_loss(dtype: torch.dtype) -> None:
    head = PartialFCHead("arcface", D, C)
    x, y = _batch()
    torch.testing.assert_close(head(x, y.to(dtype)), head(x, y))


def test_non_finite_batch_leaves_adaface_statistics_unchanged_and_rejected_calls_draw_nothing() -> None:
    poisoned = PartialFCHead("adaface", D, C, sample_rate=0.5, t_alpha=0.5)
    clean = PartialFCHead("adaface", D, C, sample_rate=0.5, t_alpha=0.5)
    clean.load_state_dict(poisoned.state_dict())
    x, y = _batch()
    bad = x.clone()
    bad[1, 1] = math.nan
    rng = torch.get_rng_state()
    with pytest.raises(ValueError, match="`labels`"):
        poisoned(x, y + C)
    assert torch.equal(torch.get_rng_state(), rng)  # a rejected call samples no negatives
    assert not torch.isfinite(poisoned(bad, y))
    torch.manual_seed(5)
    after_bad = [poisoned(x, y), poisoned(x.flip(0), y.flip(0))]
    torch.manual_seed(5)
    alone = [clean(x, y), clean(x.flip(0), y.flip(0))]
    for got, expected in zip(after_bad, alone, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    for name, value in clean.state_dict().items():
        assert torch.isfinite(poisoned.state_dict()[name]).all()
        torch.testing.assert_close(poisoned.state_dict()[name], value, rtol=0, atol=0)


def test_adaface_clamps_every_cosine_as_the_full_head() -> None:
    # A row pointing exactly at another class's centre: the full AdaFace head clamps that cosine, so must this.
    partial_fc = PartialFCHead("adaface", D, C, margin=0.4, scale=16.0, eps=1e-2)
    full = AdaFaceHead(D, C, margin=0.4, scale=16.0, eps=1e-2)
    with torch.no_grad():
        full.weight.copy_(partial_fc.weight)
    y = torch.tensor([0, 1])
    x = torch.stack([partial_fc.weight[3], partial_fc.weight[5]]).detach() * 4
    for got, expected in zip(_value_and_grads(partial_fc, x, y), _value_and_grads(full, x, y), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_bad_head_kwargs_and_inputs_are_named() -> None:
    with pytest.raises(TypeError, match="head_kwargs"):
        PartialFCHead("cosface", D, C, boundary="none")
    head = PartialFCHead("cosface", D, C)
    x, y = _batch()
    with pytest.raises(ValueError, match=r"embeddings.*\(batch, 8\)"):
        head(x[:, :3], y)
    with pytest.raises(ValueError, match=r"labels.*\[0, 6\]"):
        head(x, y + C)
    with pytest.raises(TypeError, match="labels"):
        head(x, y.float())


# ---------------------------------------------------------------- two gloo processes


def _full_head_reference(name: str, kwargs: dict, weight: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    head = dict((n, t) for n, t, _ in FULL_HEADS)[name](D, C, **kwargs).double()
    with torch.no_grad():
        head.weight.copy_(weight)
    return _value_and_grads(head, x, y)


def _rank(rank: int, world: int, port: int, sizes: list[int], queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    x, y = _batch(torch.float64, rows=sum(sizes))
    rows = slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))
    weight = torch.randn(C, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    results = {}
    for name, _, kwargs in FULL_HEADS:
        head = PartialFCHead(name, D, C, **kwargs).double()
        with torch.no_grad():
            head.weight.copy_(weight[head.class_start : head.class_stop])
        values = [tensor.numpy() for tensor in _value_and_grads(head, x[rows], y[rows])]
        results[name] = (*values, (head.class_start, head.class_stop))
    queue.put((rank, results))  # numpy, not tensors: shared tensor storage dies with the process


@pytest.mark.parametrize("sizes", [[3, 3], [4, 1]], ids=["even", "uneven"])
def test_two_processes_equal_the_full_head_on_the_whole_batch(sizes: list[int]) -> None:
    x, y = _batch(torch.float64, rows=sum(sizes))
    weight = torch.randn(C, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    results = run_ranks(_rank, sizes, timeout=120)
    assert [results[r]["arcface"][3] for r in range(2)] == [(0, 4), (4, 7)]
    for name, _, kwargs in FULL_HEADS:
        loss, grad_x, grad_w = _full_head_reference(name, kwargs, weight, x, y)
        for rank in range(2):
            *values, (start, stop) = results[rank][name]
            got_loss, got_grad_x, got_grad_w = (torch.from_numpy(value) for value in values)
            rows = slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))
            torch.testing.assert_close(got_loss, loss, msg=f"{name} loss on rank {rank}")
            # world x the global gradient: DDP's average over ranks then gives the backbone the full-batch gradient
            torch.testing.assert_close(got_grad_x / 2, grad_x[rows], msg=f"{name} embedding grad on rank {rank}")
            torch.testing.assert_close(got_grad_w, grad_w[start:stop], msg=f"{name} centre grad on rank {rank}")
    assert math.isfinite(float(loss))
