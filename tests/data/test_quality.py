"""Quality scores and their mapping to PETAL's q."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from hf_margin.tuners.petal.quality import (
    QualityCalibration,
    add_quality_column,
    paper_quality,
    resolution_score,
    sharpness_score,
)


def _textured(n: int = 4) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(n, 32, 32, generator=generator) * 255).to(torch.uint8)


def _degrade(images: torch.Tensor, factor: int) -> torch.Tensor:
    x = images.float().unsqueeze(1)
    small = F.interpolate(x, scale_factor=1 / factor, mode="bilinear", antialias=True, align_corners=False)
    return (
        F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False).squeeze(1).round().to(torch.uint8)
    )


def test_sharpness_falls_as_resolution_falls() -> None:
    images = _textured()
    scores = [sharpness_score(images)] + [sharpness_score(_degrade(images, f)) for f in (2, 4, 8)]
    for sharper, blurrier in itertools.pairwise(scores):
        assert (sharper > blurrier).all()


def test_sharpness_accepts_uint8_float_and_channels() -> None:
    images = _textured()
    torch.testing.assert_close(sharpness_score(images), sharpness_score(images.float() / 255))
    torch.testing.assert_close(sharpness_score(images), sharpness_score(images.unsqueeze(1).expand(-1, 3, -1, -1)))
    with pytest.raises(ValueError, match=r"`images` must have shape \(N, H, W\) or \(N, C, H, W\)"):
        sharpness_score(torch.rand(5, 5))


def test_resolution_score() -> None:
    torch.testing.assert_close(resolution_score([112, 56, 14, 200], 112), torch.tensor([1.0, 0.5, 0.125, 1.0]))
    with pytest.raises(ValueError, match="must be > 0"):
        resolution_score([0], 112)


def test_paper_mapping_is_not_clipped() -> None:
    torch.testing.assert_close(paper_quality(torch.tensor([0.5, 2.0, -1.0]), 0.5), torch.tensor([0.5, 2.0, -1.0]))


def test_calibration_is_the_reference_cdf() -> None:
    calibration = QualityCalibration.fit(torch.tensor([3.0, 1.0, 2.0, 4.0]))
    torch.testing.assert_close(
        calibration(torch.tensor([0.0, 1.0, 2.5, 4.0, 9.0])), torch.tensor([0, 0.25, 0.5, 1, 1.0])
    )
    with pytest.raises(ValueError, match="at least two reference values"):
        QualityCalibration.fit(torch.tensor([1.0]))


def test_add_quality_column_with_datasets() -> None:
    datasets = pytest.importorskip("datasets")
    images = _textured(6)
    data = datasets.Dataset.from_dict({"image": images.tolist()})
    calibration = QualityCalibration.fit(sharpness_score(images))
    scored = add_quality_column(data, "image", sharpness_score, calibration, batch_size=4)
    torch.testing.assert_close(torch.tensor(scored["petal_quality"]), calibration(sharpness_score(images)))
