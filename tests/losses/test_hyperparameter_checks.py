"""#19 items 2 and 5: every loss module rejects a wrongly typed numeric setting with a TypeError naming it, and a
NaN one with a ValueError naming it, when built (not a comparison error from deep inside, not a NaN loss later)."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import hf_margin.losses as losses
from hf_margin.functional.comp_sum import comp_sum_loss
from hf_margin.functional.focal import focal_loss
from hf_margin.functional.landmark_kd import landmark_kd_loss
from hf_margin.functional.multi_similarity import multi_similarity_loss
from hf_margin.heads import ArcFaceHead

REQUIRED = {
    "ALDRKLLoss": {"num_examples": 10},
    "LDAMLoss": {"class_counts": [3, 2, 1]},
    "MultiLabelLDAMLoss": {"class_counts": [3, 2, 1]},
    "ZLoss": {"a": 1.0, "b": 1.0},
    "UNPGLoss": {"head": lambda: ArcFaceHead(4, 3)},
}


def numeric_settings() -> list[tuple[str, str]]:
    cases = []
    for name in losses.__all__:
        cls = getattr(losses, name)
        if not inspect.isclass(cls) or name in ("MetricLossBase", "PairBatch"):
            continue
        for parameter in inspect.signature(cls).parameters.values():
            default = REQUIRED.get(name, {}).get(parameter.name, parameter.default)
            if isinstance(default, int | float) and not isinstance(default, bool):
                cases.append((name, parameter.name))
    return cases


def build(name: str, **overrides: object) -> object:
    kwargs = {k: v() if callable(v) else v for k, v in REQUIRED.get(name, {}).items()}
    return getattr(losses, name)(**{**kwargs, **overrides})


@pytest.mark.parametrize(("name", "setting"), numeric_settings())
def test_wrongly_typed_or_nan_settings_name_the_argument(name: str, setting: str) -> None:
    with pytest.raises(TypeError, match=f"`{setting}`"):
        build(name, **{setting: "0.5"})
    # None may be an option's "off" value elsewhere (LDAM's exclusive c / max_m), and NaN is a float for an int
    # setting: either error type, as long as it names the setting.
    for bad in (None, math.nan):
        with pytest.raises((TypeError, ValueError), match=f"`{setting}`"):
            build(name, **{setting: bad})


def test_the_functions_check_what_the_modules_check() -> None:
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(TypeError, match="`tau`"):
        comp_sum_loss(logits, labels, tau="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`gamma`"):
        focal_loss(logits, labels, gamma="2")  # type: ignore[arg-type]
    points = torch.randn(4, 6)
    for setting in ("main_weight", "alpha_tough", "alpha_minus_tolerant", "band"):
        with pytest.raises(ValueError, match=f"`{setting}`"):
            landmark_kd_loss(points, points, points, points, **{setting: math.nan})
    with pytest.raises(ValueError, match="`main_weight`"):
        landmark_kd_loss(points, points, points, points, main_weight=-1.0)
    sim, mask = torch.rand(3, 3), torch.eye(3, dtype=torch.bool)
    with pytest.raises(TypeError, match="`base`"):
        multi_similarity_loss(sim, mask, ~mask, base="0.5")  # type: ignore[arg-type]
