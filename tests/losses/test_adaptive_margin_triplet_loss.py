"""AdaptiveMarginTripletLoss: the PML call contract, miners, the neutral setting against PML's triplet loss."""

from __future__ import annotations

import pytest
import torch

from hf_margin.functional.adaptive_margin_triplet import adaptive_margin_triplet_loss
from hf_margin.losses import AdaptiveMarginTripletLoss, MultiSimilarityMiner

PRINTED = {"hinge": False, "detach_margin": False, "variance_hinge": False}


def batch(n: int = 9, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.arange(n) % 3


def all_triplets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool)
    return torch.nonzero(pos.unsqueeze(2) & ~same.unsqueeze(1), as_tuple=True)


@pytest.mark.parametrize("flags", [PRINTED, {}])
def test_labels_equal_listed_triplets(flags: dict[str, bool]) -> None:
    x, y = batch()
    a, p, n = all_triplets(y)
    loss = AdaptiveMarginTripletLoss(**flags)
    expected = adaptive_margin_triplet_loss(x[a], x[p], x[n], **flags)
    assert torch.allclose(loss(x, y), expected)
    assert torch.allclose(loss(x, None, (a, p, n)), expected)


def test_pair_tuple_from_miner_gives_its_triplets() -> None:
    x, y = batch()
    a1, p, a2, n = MultiSimilarityMiner(epsilon=0.5)(x, y)
    pos = torch.zeros(9, 9, dtype=torch.bool)
    neg = torch.zeros_like(pos)
    pos[a1, p], neg[a2, n] = True, True
    ta, tp, tn = torch.nonzero(pos.unsqueeze(2) & neg.unsqueeze(1), as_tuple=True)
    loss = AdaptiveMarginTripletLoss()(x, y, (a1, p, a2, n))
    assert torch.allclose(loss, adaptive_margin_triplet_loss(x[ta], x[tp], x[tn]))


def test_neutral_setting_is_pml_triplet_loss() -> None:
    """Fixed margin, no variance/covariance: over all triplets (symmetric in anchor and positive) the mean of
    d_ap - (d_an + d_pn)/2 + m is PML's triplet loss when every triplet is active (a large margin)."""
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import TripletMarginLoss

    x, y = batch()
    ours = AdaptiveMarginTripletLoss(margin=10.0, amt_weight=1, cov_weight=0, var_weight=0)(x, y)
    pml = TripletMarginLoss(margin=10.0, distance=LpDistance(normalize_embeddings=False))(x, y)
    assert torch.allclose(ours, pml.double())


def test_ref_emb_and_no_triplets() -> None:
    x, y = batch()
    ref, ref_y = batch(6, seed=1)
    a, p, n = torch.nonzero(
        (y[:, None] == ref_y[None]).unsqueeze(2) & (y[:, None] != ref_y[None]).unsqueeze(1), as_tuple=True
    )
    loss = AdaptiveMarginTripletLoss()
    assert torch.allclose(loss(x, y, ref_emb=ref, ref_labels=ref_y), adaptive_margin_triplet_loss(x[a], ref[p], ref[n]))
    x.requires_grad_()
    for empty in (loss(x, torch.zeros(9, dtype=torch.long)), loss(x, None, (torch.tensor([], dtype=torch.long),) * 3)):
        empty.backward()
        assert empty.item() == 0.0 and x.grad is not None and torch.isfinite(x.grad).all()


def test_bf16_autocast_and_training_moves_the_right_way() -> None:
    x, y = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert AdaptiveMarginTripletLoss()(x.float().bfloat16(), y).dtype == torch.float32
    z = (x.float() * 0.3).requires_grad_()
    loss_fn = AdaptiveMarginTripletLoss()
    same = (y[:, None] == y[None]) & ~torch.eye(9, dtype=torch.bool)

    def gap() -> float:
        return (
            torch.cdist(z, z)[~same & ~torch.eye(9, dtype=torch.bool)].mean() - torch.cdist(z, z)[same].mean()
        ).item()

    before = gap()
    for _ in range(20):  # plain gradient descent (torch.optim's first step costs seconds of imports)
        (grad,) = torch.autograd.grad(loss_fn(z, y), z)
        with torch.no_grad():
            z -= 0.01 * grad
    assert gap() > before  # the default pulls positives in and pushes negatives out


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"amt_weight": -1}, "amt_weight"), ({"eps": float("nan")}, "eps"), ({"hinge": "yes"}, "hinge")],
)
def test_bad_arguments(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=name):
        AdaptiveMarginTripletLoss(**kwargs)  # type: ignore[arg-type]
    x, y = batch()
    with pytest.raises(ValueError, match="labels"):
        AdaptiveMarginTripletLoss()(x, y[:3])
    with pytest.raises(ValueError, match="indices_tuple"):
        AdaptiveMarginTripletLoss()(x, y, (torch.tensor([0]), torch.tensor([20]), torch.tensor([1])))


def test_far_embeddings_in_a_large_batch_give_a_finite_loss() -> None:
    """Margins near their cap (d_an > 21) over thousands of triplets: the mean must not overflow float32."""
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0)) * 100
    y = torch.arange(32) % 4  # 32 * 7 * 24 = 5376 triplets
    for dtype in (torch.float32, torch.bfloat16):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            z = x.to(dtype).requires_grad_()
            loss = AdaptiveMarginTripletLoss()(z, y)
        (grad,) = torch.autograd.grad(loss, z)
        assert torch.isfinite(loss) and loss > 1e35 and torch.isfinite(grad).all()


def test_citation_and_repr() -> None:
    loss = AdaptiveMarginTripletLoss()
    assert "2206.02187" in loss.citation and "detach_margin=True" in repr(loss)
