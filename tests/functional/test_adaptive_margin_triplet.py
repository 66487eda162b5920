"""M2FNet's adaptive-margin triplet loss (arXiv 2206.02187, Eqs. 9-13): the spec's numbers, invariances, readings."""

from __future__ import annotations

import math

import pytest
import torch

from hf_margin.functional.adaptive_margin_triplet import (
    adaptive_margin,
    adaptive_margin_triplet_loss,
    adaptive_margin_triplet_terms,
    covariance_term,
    variance_term,
)

PRINTED = {"hinge": False, "detach_margin": False, "variance_hinge": False}


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def ones(n: int) -> torch.Tensor:
    return torch.ones(n, dtype=torch.float64)


def triplets(n: int = 6, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(n, d, generator=g, dtype=torch.float64) * 0.5 for _ in range(3))


def test_spec_triplet_value_and_gradients() -> None:
    d_ap, d_an = t(0.5).requires_grad_(), t(1.0).requires_grad_()
    value = adaptive_margin_triplet_terms(d_ap, d_an, t(0.5))
    value.backward()
    assert value.item() == pytest.approx(4.020671, abs=1e-6)
    assert d_ap.grad.item() == pytest.approx(-0.0827, abs=1e-4)
    assert d_an.grad.item() == pytest.approx(7.5, abs=1e-9)
    assert adaptive_margin(t(0.5), t(1.0)).item() == pytest.approx(1.270671 + 3, abs=1e-6)


def test_spec_degenerate_triplet() -> None:
    assert adaptive_margin_triplet_terms(t(0.0), t(0.0), t(0.0)).item() == pytest.approx(4.036631, abs=1e-6)


def test_spec_variance_and_covariance() -> None:
    z = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=torch.float64)
    for hinge in (False, True):
        assert variance_term(z, ones(4), 1e-4, hinge).item() == pytest.approx(0.422563, abs=1e-6)
    assert variance_term(2 * z, ones(4), 1e-4, hinge=False).item() == pytest.approx(-0.154744, abs=1e-6)
    assert variance_term(2 * z, ones(4), 1e-4, hinge=True).item() == 0.0
    z = torch.tensor([[0, 0], [1, 1], [2, 2.5]], dtype=torch.float64)
    assert covariance_term(z, ones(3)).item() == pytest.approx(1.5625, abs=1e-9)


def test_weighted_rows_equal_repeated_rows() -> None:
    z = triplets(4)[0]
    weights = t(1, 3, 0, 2)
    repeated = z.repeat_interleave(weights.long(), dim=0)
    assert torch.allclose(variance_term(z, weights), variance_term(repeated, ones(len(repeated))))
    assert torch.allclose(covariance_term(z, weights), covariance_term(repeated, ones(len(repeated))))


def test_default_weights_combine_the_three_terms() -> None:
    a, p, n = triplets()
    parts = {
        "amt": adaptive_margin_triplet_loss(a, p, n, amt_weight=1, cov_weight=0, var_weight=0, **PRINTED),
        "cov": adaptive_margin_triplet_loss(a, p, n, amt_weight=0, cov_weight=1, var_weight=0, **PRINTED),
        "var": adaptive_margin_triplet_loss(a, p, n, amt_weight=0, cov_weight=0, var_weight=1, **PRINTED),
    }
    total = adaptive_margin_triplet_loss(a, p, n, **PRINTED)
    assert torch.allclose(total, 20 * parts["amt"] + 5 * parts["cov"] + parts["var"])
    expected_var = sum(variance_term(z, ones(len(z)), 1e-4, hinge=False) for z in (a, p, n))
    assert torch.allclose(parts["var"], expected_var)


def test_invariances() -> None:
    a, p, n = triplets()
    rotation, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    shift = t(3.0, -2.0, 0.5)
    amt = {"cov_weight": 0, "var_weight": 0, **PRINTED}
    base = adaptive_margin_triplet_loss(a, p, n, **amt)
    assert torch.allclose(base, adaptive_margin_triplet_loss(a @ rotation, p @ rotation, n @ rotation, **amt))
    assert torch.allclose(base, adaptive_margin_triplet_loss(a + shift, p + shift, n + shift, **amt))
    full = adaptive_margin_triplet_loss(a, p, n, **PRINTED)
    assert torch.allclose(full, adaptive_margin_triplet_loss(a + shift, p + shift, n + shift, **PRINTED))


def test_detached_margin_has_the_gradient_of_the_distance_part() -> None:
    a, p, n = (z.requires_grad_() for z in triplets())
    adaptive_margin_triplet_loss(a, p, n, None, 1, 0, 0, hinge=False, detach_margin=True).backward()
    grads = [z.grad.clone() for z in (a, p, n)]
    a2, p2, n2 = (z.detach().clone().requires_grad_() for z in (a, p, n))
    dist = torch.nn.functional.pairwise_distance
    (dist(a2, p2, eps=0) - (dist(a2, n2, eps=0) + dist(p2, n2, eps=0)) / 2).mean().backward()
    for ours, reference in zip(grads, (a2.grad, p2.grad, n2.grad), strict=True):
        assert torch.allclose(ours, reference)


def test_fixed_margin_is_the_symmetric_triplet_hinge() -> None:
    a, p, n = triplets()
    loss = adaptive_margin_triplet_loss(a, p, n, margin=0.3, amt_weight=1, cov_weight=0, var_weight=0)
    d = torch.nn.functional.pairwise_distance
    expected = torch.relu(d(a, p, eps=0) - (d(a, n, eps=0) + d(p, n, eps=0)) / 2 + 0.3).mean()
    assert torch.allclose(loss, expected)
    # Averaging the plain triplet loss over a triplet and its anchor-positive swap gives the same (no hinge active).
    plain = torch.nn.functional.triplet_margin_loss
    big = 10.0
    swapped = (plain(a, p, n, margin=big, eps=0) + plain(p, a, n, margin=big, eps=0)) / 2
    unhinged = adaptive_margin_triplet_loss(a, p, n, margin=big, amt_weight=1, cov_weight=0, var_weight=0)
    assert torch.allclose(unhinged, swapped)


@pytest.mark.parametrize("flags", [PRINTED, {"hinge": True, "detach_margin": False, "variance_hinge": True}])
def test_gradcheck(flags: dict[str, bool]) -> None:
    """The forms whose gradient is the value's (a detached margin's is by design not: see the test above)."""
    a, p, n = (z.requires_grad_() for z in triplets(4, 2))
    assert torch.autograd.gradcheck(lambda x, y, z: adaptive_margin_triplet_loss(x, y, z, **flags), (a, p, n))


def test_bf16_autocast_computes_in_float32() -> None:
    a, p, n = (z.float() for z in triplets())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = adaptive_margin_triplet_loss(a.bfloat16(), p.bfloat16(), n.bfloat16())
    assert low.dtype == torch.float32
    reference = adaptive_margin_triplet_loss(a.bfloat16().float(), p.bfloat16().float(), n.bfloat16().float())
    assert torch.allclose(low, reference)


def test_extreme_but_finite_inputs() -> None:
    a, p, n = (z.float().requires_grad_() for z in (1e3 * z for z in triplets()))
    for flags in (PRINTED, {}):
        loss = adaptive_margin_triplet_loss(a, p, n, **flags)
        grads = torch.autograd.grad(loss, (a, p, n))
        assert math.isfinite(loss.item()) and all(torch.isfinite(g).all() for g in grads)
    same = torch.zeros(3, 4, requires_grad=True)  # coincident points and one triplet per row
    loss = adaptive_margin_triplet_loss(same, same, same)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(same.grad).all()
    single = adaptive_margin_triplet_loss(*(z[:1] for z in triplets()), **PRINTED)
    assert torch.isfinite(single)  # one triplet: variance and covariance terms are 0
    far = torch.randn(4000, 2, generator=torch.Generator().manual_seed(2)) * 100  # margins at their cap
    assert torch.isfinite(adaptive_margin_triplet_loss(far, far.roll(1, 0), far.roll(2, 0)))  # 4000 * ~1e35


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"amt_weight": -1.0}, "amt_weight"),
        ({"cov_weight": float("nan")}, "cov_weight"),
        ({"var_weight": "1"}, "var_weight"),
        ({"eps": 0.0}, "eps"),
        ({"margin": "0.5"}, "margin"),
        ({"hinge": 1}, "hinge"),
        ({"detach_margin": "no"}, "detach_margin"),
        ({"variance_hinge": None}, "variance_hinge"),
    ],
)
def test_bad_options(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=name):
        adaptive_margin_triplet_loss(*triplets(), **kwargs)  # type: ignore[arg-type]


def test_bad_shapes() -> None:
    a, p, n = triplets()
    with pytest.raises(ValueError, match="negative"):
        adaptive_margin_triplet_loss(a, p, n[:, :2])
    with pytest.raises(ValueError, match="same shape"):
        adaptive_margin_triplet_loss(a, p, n[:3])
    with pytest.raises(TypeError, match="anchor"):
        adaptive_margin_triplet_loss(a.long(), p, n)
