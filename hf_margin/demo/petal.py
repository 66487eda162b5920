"""Demo entry: PETALface's claim in miniature, on the ORL faces.

1. Pretrain a small ViT with an ArcFace head (a `MarginHeadModel`) on high-resolution images of 20 people.
2. Fine-tune it on low-resolution copies (downsampled by 2, 4 and 8, then upsampled back) of 10 other people
   with a new ArcFace head, three ways at the same budget: full fine-tuning, one LoRA, and PETAL (two LoRA
   branches blended per image by its quality q: the sharpness score, calibrated to its percentile on the
   fine-tuning images).
3. Verify the 10 remaining, unseen people: HR-HR pairs, LR probe vs HR gallery, and LR-LR (LR = 4x down).

The paper's shape to check: PETAL >= LoRA > full fine-tuning on low resolution, and PETAL keeps the
high-resolution accuracy that full fine-tuning loses. The pretrained backbone is cached (``$HF_MARGIN_CACHE``,
default ``~/.cache/hf_margin``), so only the first run pays for step 1. Without the ORL faces the entry trains
nothing and reports one row saying where to point it (8x8 digits have no resolution to lose).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hf_margin.demo import NEEDS_FACES, DemoContext, DemoRow
from hf_margin.demo.data.faces import (
    IdentityImages,
    load_identities,
)
from hf_margin.heads import build_head
from hf_margin.metrics import tar_at_far, verification_accuracy
from hf_margin.models.margin_head import MarginHeadConfig, MarginHeadModel
from hf_margin.tuners.petal.quality import QualityCalibration, sharpness_score

FAR = 0.01
PRETRAIN_VERSION = 1  # part of the pretrained ViT's cache key: bump when the pretraining code changes
FINETUNE_WEIGHT_DECAY = 0.1  # the paper's LoRA fine-tuning scripts (AdamW, lr 5e-4, wd 0.1)
PROTOCOLS = ("HR-HR", "LR-HR", "LR-LR")


@dataclass(frozen=True)
class PetalSetup:
    """Budget and protocol of the comparison (defaults: the demo's short run; the recipe passes more).

    Args:
        image_height: images are resized to this height (ORL: 112 -> 64).
        image_width: and this width (92 -> 56).
        pretrain_epochs: epochs of ArcFace pretraining on the first 20 people's HR images.
        finetune_epochs: epochs of each fine-tuning method on the next 10 people's LR copies.
        seeds: fine-tuning seeds (results averaged).
        rank: LoRA rank, and the rank of each PETAL branch.
        pretrain_lr: AdamW learning rate of pretraining.
        finetune_lr: AdamW learning rate of the LoRA/PETAL fine-tuning (full fine-tuning uses a tenth of it).
        lr_factors: downsampling factors of the LR training copies.
        eval_factor: downsampling factor of the LR probes at evaluation.
    """

    image_height: int = 64
    image_width: int = 56
    pretrain_epochs: int = 60
    finetune_epochs: int = 10
    seeds: int = 1
    rank: int = 8
    pretrain_lr: float = 1e-3
    finetune_lr: float = 5e-4
    lr_factors: tuple[int, ...] = (2, 4, 8)
    eval_factor: int = 4


@dataclass
class MethodResult:
    """Mean TAR@FAR and verification accuracy per protocol, training time and trainable-parameter share."""

    tar: dict[str, float]
    accuracy: dict[str, float]
    seconds: float
    trainable_share: float


def _prepare(data: IdentityImages, setup: PetalSetup) -> Tensor:
    x = torch.from_numpy(data.images).float().div(127.5).sub(1.0).unsqueeze(1)
    return F.interpolate(x, size=(setup.image_height, setup.image_width), mode="bilinear", antialias=True)


def degrade(images: Tensor, factor: int) -> Tensor:
    """Low-resolution copies: downsample by `factor` (antialiased), then upsample back to the original size."""
    if factor == 1:
        return images
    small = F.interpolate(images, scale_factor=1 / factor, mode="bilinear", antialias=True)
    return F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)


def _augment(x: Tensor, shift: int = 4) -> Tensor:
    """Random horizontal flips and random shifts of up to `shift` pixels (reflection padding)."""
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    padded = F.pad(x, (shift,) * 4, mode="reflect")
    dy, dx = torch.randint(0, 2 * shift + 1, (2,)).tolist()
    return padded[..., dy : dy + x.shape[-2], dx : dx + x.shape[-1]]


def _train(
    model: nn.Module, x: Tensor, y: Tensor, epochs: int, lr: float, weight_decay: float, quality: Tensor | None = None
) -> float:
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(32):
            extra = {} if quality is None else {"petal_quality": quality[batch]}
            loss = model(pixel_values=_augment(x[batch]), labels=y[batch], **extra).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def _embed(model: nn.Module, x: Tensor, quality: Tensor | None = None) -> Tensor:
    model.eval()
    extra: dict[str, Tensor] = {} if quality is None else {"petal_quality": quality}
    with torch.no_grad():
        return model(pixel_values=x, **extra).embeddings + model(pixel_values=x.flip(-1), **extra).embeddings


def cross_pair_scores(probe: Tensor, gallery: Tensor, labels: Tensor, same_set: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of every probe-gallery pair and whether it is genuine, leaving out pairs of one underlying photo
    (a photo's LR copy against itself, or a photo against itself)."""
    p, g = F.normalize(probe, dim=1), F.normalize(gallery, dim=1)
    scores = p @ g.t()
    keep = torch.ones_like(scores, dtype=torch.bool).triu(1) if same_set else ~torch.eye(len(p), dtype=torch.bool)
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    return scores[keep].numpy(), same[keep].numpy()


def _pretrained_model(x: Tensor, y: Tensor, setup: PetalSetup, cache: Path) -> MarginHeadModel:
    from transformers import ViTConfig

    recipe = [PRETRAIN_VERSION, setup.image_height, setup.image_width, setup.pretrain_epochs, setup.pretrain_lr]
    key = hashlib.sha256(json.dumps([*recipe, x.shape[0], float(x.sum())]).encode()).hexdigest()[:12]
    folder = cache / f"petal_demo_vit_{key}"
    if (folder / "config.json").is_file():
        return MarginHeadModel.from_pretrained(folder)
    torch.manual_seed(0)
    backbone = ViTConfig(
        hidden_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=192,
        image_size=(setup.image_height, setup.image_width),
        patch_size=8,
        num_channels=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    config = MarginHeadConfig(
        backbone_config=backbone.to_dict(), head_type="arcface", pooling="mean", embedding_size=128
    )
    config.num_labels = int(y.max()) + 1
    model = MarginHeadModel(config)
    _train(model, x, y, setup.pretrain_epochs, setup.pretrain_lr, weight_decay=0.05)  # the paper's pretraining
    model.save_pretrained(folder)
    return model


def _with_new_head(model: MarginHeadModel, classes: int) -> MarginHeadModel:
    model = copy.deepcopy(model)
    model.head = build_head("arcface", model.head.embedding_size, classes)
    model.config.num_labels = classes
    return model


def _finetune(
    method: str, pretrained: MarginHeadModel, x: Tensor, y: Tensor, q: Tensor, setup: PetalSetup, seed: int
) -> tuple[nn.Module, float]:
    from peft import LoraConfig, get_peft_model

    from hf_margin.tuners.petal import PetalConfig

    torch.manual_seed(seed)
    model: nn.Module = _with_new_head(pretrained, int(y.max()) + 1)
    targets = ["q_proj", "k_proj", "v_proj"]
    if method == "full fine-tuning":
        return model, _train(model, x, y, setup.finetune_epochs, setup.finetune_lr / 10, FINETUNE_WEIGHT_DECAY)
    if method == "LoRA":
        config: Any = LoraConfig(
            r=setup.rank, lora_alpha=setup.rank, target_modules=[*targets, "projection"], modules_to_save=["head"]
        )
        model = get_peft_model(model, config)
        return model, _train(model, x, y, setup.finetune_epochs, setup.finetune_lr, FINETUNE_WEIGHT_DECAY)
    config = PetalConfig(
        r=setup.rank, target_modules=targets, single_branch_modules=["projection"], modules_to_save=["head"]
    )
    model = get_peft_model(model, config)
    return model, _train(model, x, y, setup.finetune_epochs, setup.finetune_lr, FINETUNE_WEIGHT_DECAY, quality=q)


def _verify(
    model: nn.Module, hr: Tensor, lr: Tensor, labels: Tensor, q_hr: Tensor | None, q_lr: Tensor | None
) -> tuple[dict[str, float], dict[str, float]]:
    e_hr, e_lr = _embed(model, hr, q_hr), _embed(model, lr, q_lr)
    pairs = {
        "HR-HR": cross_pair_scores(e_hr, e_hr, labels, same_set=True),
        "LR-HR": cross_pair_scores(e_lr, e_hr, labels, same_set=False),
        "LR-LR": cross_pair_scores(e_lr, e_lr, labels, same_set=True),
    }
    tar = {name: tar_at_far(s, y, FAR) for name, (s, y) in pairs.items()}
    accuracy = {name: verification_accuracy(s, y)[0] for name, (s, y) in pairs.items()}
    return tar, accuracy


def _share(model: nn.Module) -> float:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable / sum(p.numel() for p in model.parameters())


def compare(data: IdentityImages, setup: PetalSetup, cache: Path, progress: Any = None) -> dict[str, MethodResult]:
    """Run the whole comparison: pretrained backbone, full fine-tuning, LoRA and PETAL."""
    images, labels = _prepare(data, setup), torch.from_numpy(data.labels)
    people = data.num_identities
    pretrain, finetune, test = (
        labels < people // 2,
        (labels >= people // 2) & (labels < 3 * people // 4),
        (labels >= 3 * people // 4),
    )
    pretrained = _pretrained_model(images[pretrain], labels[pretrain], setup, cache)

    ft_hr, ft_labels = images[finetune], labels[finetune] - labels[finetune].min()
    ft_x = torch.cat([degrade(ft_hr, f) for f in setup.lr_factors])
    ft_y = ft_labels.repeat(len(setup.lr_factors))
    calibration = QualityCalibration.fit(sharpness_score(torch.cat([ft_hr, ft_x]).add(1).div(2)))

    def quality(x: Tensor) -> Tensor:
        return calibration(sharpness_score(x.add(1).div(2)))

    test_hr = images[test]
    test_lr = degrade(test_hr, setup.eval_factor)
    q_ft, q_hr, q_lr = quality(ft_x), quality(test_hr), quality(test_lr)

    results: dict[str, MethodResult] = {}
    tar, accuracy = _verify(pretrained, test_hr, test_lr, labels[test], None, None)
    results["pretrained (no fine-tuning)"] = MethodResult(tar, accuracy, 0.0, 0.0)
    methods = ("full fine-tuning", "LoRA", "PETAL")
    bar = progress(total=len(methods) * setup.seeds, desc="PETAL demo", unit="run", leave=False) if progress else None
    for method in methods:
        runs = []
        for seed in range(setup.seeds):
            model, seconds = _finetune(method, pretrained, ft_x, ft_y, q_ft, setup, seed)
            is_petal = method == "PETAL"
            tar, accuracy = _verify(
                model, test_hr, test_lr, labels[test], q_hr if is_petal else None, q_lr if is_petal else None
            )
            runs.append((tar, accuracy, seconds, _share(model)))
            if bar is not None:
                bar.update()
        results[method] = MethodResult(
            {p: float(np.mean([r[0][p] for r in runs])) for p in PROTOCOLS},
            {p: float(np.mean([r[1][p] for r in runs])) for p in PROTOCOLS},
            float(sum(r[2] for r in runs)),
            runs[0][3],
        )
    if bar is not None:
        bar.close()
    return results


def cache_dir() -> Path:
    return Path(os.environ.get("HF_MARGIN_CACHE", Path.home() / ".cache" / "hf_margin"))


def rows_from_results(results: dict[str, MethodResult], dataset: str) -> list[DemoRow]:
    """PETAL against LoRA and against full fine-tuning on each protocol's TAR@FAR."""
    petal = results["PETAL"]
    rows = []
    for baseline in ("LoRA", "full fine-tuning"):
        base = results[baseline]
        for protocol in PROTOCOLS:
            rows.append(
                DemoRow(
                    "petal",
                    "PETAL",
                    baseline,
                    f"{protocol} TAR@FAR={FAR:g}",
                    petal.tar[protocol],
                    base.tar[protocol],
                    petal.seconds,
                    dataset,
                )
            )
    return rows


def report(results: dict[str, MethodResult]) -> str:
    """A markdown table: TAR@FAR and accuracy per protocol, and the trainable-parameter share."""
    header = "| method | trainable | " + " | ".join(f"{p} TAR@1% / acc" for p in PROTOCOLS) + " | train time |"
    lines = [header, "|" + "---|" * (len(PROTOCOLS) + 3)]
    for name, r in results.items():
        cells = " | ".join(f"{r.tar[p]:.3f} / {r.accuracy[p]:.3f}" for p in PROTOCOLS)
        lines.append(f"| {name} | {100 * r.trainable_share:.2f}% | {cells} | {r.seconds:.0f} s |")
    return "\n".join(lines)


def load_faces(data_dir: Any) -> IdentityImages | None:
    """The ORL faces; None when they are absent. The digits fallback of the other face entries does not fit here:
    8x8 digits have no resolution to lose, so the low-resolution comparison would measure nothing (every method
    scored TAR@FAR=0.015 on them)."""
    data = load_identities(data_dir)
    return data if data.name == "ORL faces" else None


def run(context: DemoContext, setup: PetalSetup | None = None) -> list[DemoRow]:
    setup = setup or PetalSetup()
    data = load_faces(context.data_dir)
    if data is None:
        metric = f"TAR@FAR={FAR:g}"
        return [DemoRow.skipped("petal", "PETAL", "LoRA, full fine-tuning", metric, "ORL faces not found", NEEDS_FACES)]
    results = compare(data, setup, cache_dir(), context.progress)
    (context.out_dir / "petal.json").write_text(
        json.dumps(
            {"dataset": data.name, "setup": asdict(setup), "results": {k: asdict(v) for k, v in results.items()}},
            indent=2,
        )
    )
    (context.out_dir / "petal.md").write_text(report(results) + "\n")
    return rows_from_results(results, data.name)
