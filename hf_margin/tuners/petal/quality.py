"""Image-quality scores for PETAL, oriented so that higher means better, and their mapping to q in [0, 1].

PETALface (arXiv 2412.07771) blends its two LoRA branches by a per-image quality from a no-reference IQA
model (BRISQUE or CNN-IQA through pyiqa in the official code) mapped to ``q = 0.5 + (score - threshold)``,
without clipping. Shipped here:

* `resolution_score`: the shorter side of the image's *source* resolution over a reference side, in (0, 1];
  exact when the degradation is known (e.g. a dataset of downsampled copies records the factor).
* `sharpness_score`: log-variance of the Laplacian, the classic blur measure; it needs no metadata and
  ranks blurred / upsampled images below sharp ones.
* `paper_quality`: the paper's ``0.5 + (score - threshold)`` (not clipped: `PetalConfig` clips by default).
* `QualityCalibration`: the empirical CDF of scores on a reference set, so q is the score's percentile
  (robust to the score's scale, which differs between estimators).

BRISQUE is not shipped: its published form needs an SVR fitted on the LIVE database, and neither
installable implementation works here (`piq` imports torchvision, which does not install beside the CPU
torch build; `brisque` 0.2.0 fails with numpy 2 when scoring).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def _as_grey_batch(images: Tensor | np.ndarray) -> Tensor:
    """(N, H, W) or (N, C, H, W) images, uint8 or float in [0, 1], as float32 grey (N, 1, H, W) in [0, 1]."""
    x = torch.as_tensor(images)
    if x.dim() not in (3, 4):
        raise ValueError(f"`images` must have shape (N, H, W) or (N, C, H, W), got {tuple(x.shape)}")
    x = x.float() / 255.0 if not x.is_floating_point() else x.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return x.mean(1, keepdim=True)


def sharpness_score(images: Tensor | np.ndarray) -> Tensor:
    """``log(var(Laplacian(image)) + 1e-8)`` per image: higher is sharper. Shape (N,)."""
    grey = _as_grey_batch(images)
    response = F.conv2d(grey, _LAPLACIAN.view(1, 1, 3, 3).to(grey))
    return torch.log(response.flatten(1).var(dim=1) + 1e-8)


def resolution_score(source_sides: Tensor | np.ndarray | list[float], reference_side: float) -> Tensor:
    """The shorter side each image was captured (or downsampled) at, over `reference_side`, clipped to (0, 1]."""
    sides = torch.as_tensor(source_sides, dtype=torch.float32)
    if reference_side <= 0 or (sides <= 0).any():
        raise ValueError("`source_sides` and `reference_side` must be > 0")
    return (sides / reference_side).clamp(max=1.0)


def paper_quality(scores: Tensor, threshold: float) -> Tensor:
    """PETALface's mapping ``q = 0.5 + (score - threshold)``; not clipped, as in the official code."""
    return 0.5 + (scores - threshold)


@dataclass
class QualityCalibration:
    """q = the fraction of reference scores below a score (the reference set's empirical CDF), in [0, 1]."""

    reference: Tensor

    @classmethod
    def fit(cls, scores: Tensor) -> QualityCalibration:
        if scores.numel() < 2:
            raise ValueError("`scores` needs at least two reference values to calibrate")
        return cls(torch.sort(scores.detach().float().flatten()).values)

    def __call__(self, scores: Tensor) -> Tensor:
        below = torch.searchsorted(self.reference, scores.detach().float().contiguous(), right=True)
        return below.float() / self.reference.numel()


def add_quality_column(
    dataset: Any,
    image_column: str,
    score_fn: Callable[[Tensor], Tensor],
    to_quality: Callable[[Tensor], Tensor],
    column: str = "petal_quality",
    batch_size: int = 64,
) -> Any:
    """A `datasets.Dataset` with `column` = ``to_quality(score_fn(images))``, computed in batches with progress."""

    def score(batch: dict[str, list[Any]]) -> dict[str, list[float]]:
        images = torch.stack([torch.as_tensor(np.asarray(image)) for image in batch[image_column]])
        return {column: to_quality(score_fn(images)).tolist()}

    return dataset.map(score, batched=True, batch_size=batch_size, desc=f"scoring {column}")
