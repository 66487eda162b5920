"""AFCRPSLoss: the module equals its functional twin (both methods), alpha = 1 is the fair CRPS, it trains an
ensemble head, and bad settings are rejected at construction."""

from __future__ import annotations

import pytest
import torch

from hf_margin.functional.crps import afcrps, fair_crps
from hf_margin.losses.crps import AFCRPSLoss


def test_module_is_the_functional_and_alpha_one_is_fair() -> None:
    g = torch.Generator().manual_seed(0)
    ensemble, target = torch.randn(5, 4, 3, generator=g), torch.randn(5, 3, generator=g)
    for method in ("sorted", "pairwise"):
        loss = AFCRPSLoss(alpha=0.95, member_dim=1, method=method)
        torch.testing.assert_close(loss(ensemble, target), afcrps(ensemble, target, 0.95, member_dim=1))
    torch.testing.assert_close(
        AFCRPSLoss(alpha=1.0, member_dim=1)(ensemble, target), fair_crps(ensemble, target, member_dim=1)
    )
    weight = torch.rand(5, 3, generator=g)
    torch.testing.assert_close(
        AFCRPSLoss(reduction="sum", member_dim=1)(ensemble, target, weight),
        (afcrps(ensemble, target, member_dim=1, reduction="none") * weight).sum(),
    )
    assert "alpha=0.95" in repr(AFCRPSLoss())


def test_training_an_ensemble_head_spreads_its_members() -> None:
    """Members x = mu + s * z_k with fixed noise z: minimising afCRPS on N(2, 1.5^2) data finds mu ~ 2 and s > 0."""
    g = torch.Generator().manual_seed(0)
    target = 2.0 + 1.5 * torch.randn(1024, generator=g)
    noise = torch.randn(1024, 8, generator=g)
    mu, log_s = torch.zeros(1, requires_grad=True), torch.full((1,), -3.0, requires_grad=True)
    optimizer = torch.optim.Adam([mu, log_s], lr=0.05)
    loss = AFCRPSLoss(alpha=0.95)
    for _ in range(200):
        optimizer.zero_grad()
        loss(mu + log_s.exp() * noise, target).backward()
        optimizer.step()
    assert mu.item() == pytest.approx(2.0, abs=0.15)
    assert log_s.exp().item() == pytest.approx(1.5, rel=0.2)


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="`alpha`"):
        AFCRPSLoss(alpha=2.0)
    with pytest.raises(ValueError, match="`method`"):
        AFCRPSLoss(method="fast")
    with pytest.raises(ValueError, match="`reduction`"):
        AFCRPSLoss(reduction="max")
    with pytest.raises(ValueError, match="M >= 2"):
        AFCRPSLoss()(torch.ones(3, 1), torch.ones(3))
