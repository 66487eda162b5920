"""Loss modules DualHeadKDLoss and LandmarkKDLoss: they call their functionals; DHKD's neutral weights (alpha = 0 is
the main head's CE, gamma = 0 the BinaryKL-Norm alone), the plain-BinaryKL ablation, bf16 inputs, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.dual_head_kd import binary_kl, binary_kl_norm
from hf_margin.functional.landmark_kd import landmark_kd_loss
from hf_margin.losses.dual_head_kd import DualHeadKDLoss
from hf_margin.losses.landmark_kd import LandmarkKDLoss


def batch(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    main, aux, teacher = (torch.randn(6, 4, generator=g) * 2 for _ in range(3))
    return main, aux, teacher, torch.randint(4, (6,), generator=g)


def test_dual_head_kd_loss_is_weighted_ce_plus_binary_kl_norm() -> None:
    main, aux, teacher, y = batch()
    loss = DualHeadKDLoss(gamma=0.5, alpha=2.0, temperature=3.0)
    expected = 0.5 * F.cross_entropy(main, y) + 2.0 * binary_kl_norm(aux, teacher, 3.0)
    torch.testing.assert_close(loss(main, aux, teacher, y), expected)
    ce, kd = loss.terms(main, aux, teacher, y)
    torch.testing.assert_close(ce + kd, expected)
    torch.testing.assert_close(DualHeadKDLoss(alpha=0.0)(main, aux, teacher, y), F.cross_entropy(main, y))
    torch.testing.assert_close(DualHeadKDLoss(gamma=0.0)(main, aux, teacher, y), binary_kl_norm(aux, teacher, 2.0))
    plain = DualHeadKDLoss(gamma=0.0, normalized=False)
    torch.testing.assert_close(plain(main, aux, teacher, y), binary_kl(aux, teacher, 2.0))
    assert DualHeadKDLoss()(main.bfloat16(), aux.bfloat16(), teacher.bfloat16(), y).dtype == torch.float32


def test_dual_head_kd_errors() -> None:
    main, aux, teacher, y = batch()
    with pytest.raises(ValueError, match="`aux_logits`"):
        DualHeadKDLoss()(main, aux[:, :3], teacher[:, :3], y)
    with pytest.raises(ValueError, match="`teacher_logits`"):
        DualHeadKDLoss()(main, aux, teacher[:3], y)
    with pytest.raises(ValueError, match="`labels`"):
        DualHeadKDLoss()(main, aux, teacher, y + 4)
    with pytest.raises(ValueError, match="`alpha`"):
        DualHeadKDLoss(alpha=-1.0)
    with pytest.raises(ValueError, match="`temperature`"):
        DualHeadKDLoss(temperature=0.0)


def test_landmark_kd_module() -> None:
    g = torch.Generator().manual_seed(1)
    truth = torch.rand(3, 8, 2, generator=g)
    p, tough, tolerant = (truth + 0.1 * torch.randn(3, 8, 2, generator=g) for _ in range(3))
    torch.testing.assert_close(LandmarkKDLoss()(p, truth, tough, tolerant), landmark_kd_loss(p, truth, tough, tolerant))
    custom = LandmarkKDLoss(main_weight=1.0, tough_weight=0.0, tolerant_weight=0.0)
    torch.testing.assert_close(
        custom(p, truth, tough, tolerant), landmark_kd_loss(p, truth, tough, tolerant, 1.0, 0.0, 0.0)
    )
    with pytest.raises(ValueError, match="`tolerant_teacher`"):
        LandmarkKDLoss()(p, truth, tough, tolerant[:2])
    with pytest.raises(ValueError, match="`main_weight`"):
        LandmarkKDLoss(main_weight=-1.0)


def test_missing_aux_logits_get_a_clear_error() -> None:
    """`aux_logits=None` (a DualHeadModel in eval mode gives none) names the argument and the way out."""
    main, _, teacher, y = batch()
    with pytest.raises(TypeError, match=r"`aux_logits` is None.*model\.train\(\).*aux_in_eval=True"):
        DualHeadKDLoss().terms(main, None, teacher, y)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`aux_logits`"):
        DualHeadKDLoss()(main, aux_logits=y, teacher_logits=teacher, labels=y)
