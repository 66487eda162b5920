"""Evidence 6: PETAL on a strong backbone (the ImageNet-pretrained EfficientNet-lite0), paired by seed.

PETALface (Narayan et al., "PETALface: Parameter Efficient Transfer Learning for Low-resolution Face Recognition",
arXiv:2412.07771) adapts a face model that verifies high-resolution (HR) faces well to low-resolution (LR) faces with
two LoRA branches per adapted layer, blended per image by its quality q: ``W x + (1 - q) B1 A1 x + q B2 A2 x``. Its
claims: PETAL beats full fine-tuning and a single LoRA on LR verification, and keeps the HR accuracy that full
fine-tuning loses. The PETAL demo's small ViT verifies HR faces poorly, so there is little HR accuracy to keep; here
the backbone is strong.

Setting. The ORL faces (40 people, 10 images each). Per seed, a seeded draw of `held_out` people is never trained on
and is verified; the others are the training people. The backbone is EfficientNet-lite0 with its ImageNet weights
(`hf_margin.demo.data.pretrained.efficientnet_lite0`); its first `frozen_blocks` blocks stay frozen and are run once
on every image (HR, its LR copies and their mirror images), the rest (its last MBConv blocks, the head convolution
and its batch norm) is the trainable tail whose pooled 1,280-d output is the embedding, as in the untouched model.
Each method trains the tail with an ArcFace head (Deng et al., arXiv:1801.07698) on LR copies of the training people
(downsampled by each of `lr_factors`, then upsampled back), at the same budget (epochs, batches, data order):

* full fine-tuning: every weight of the tail (depthwise convolutions and batch-norm scales included), at
  `full_lr_scale` times the learning rate (the PETAL demo's convention);
* LoRA (peft `LoraConfig`, rank `rank`, alpha = rank) on the tail's 1x1 convolutions (each block's expand and
  project convolution and the head convolution);
* PETAL (`hf_margin.tuners.petal.PetalConfig`, rank `rank` per branch) on the same convolutions; q is the image's
  sharpness (variance of the Laplacian) calibrated to its percentile among the training images (HR and LR), as in
  `hf_margin.demo.petal`.

The depthwise convolutions (groups > 1) are not adapted by LoRA or PETAL (`PetalConv2d` takes groups = 1 only).
Batch-norm statistics stay the pretrained ones in every method (batches of 32 maps of 3 x 3 positions would give
noisy statistics; the comparison is about the weights). The held-out people are verified on all pairs of their images
(the sum of an image's and its mirror's embedding, cosine similarity): HR-HR, LR probe against HR gallery (LR-HR) and
LR-LR, with LR = downsampled by `eval_factor`; TAR at FAR 1e-2 and 10-fold verification accuracy. The untouched
pretrained tail is verified on the same pairs (the reference of HR-HR retention: a method's HR-HR TAR over it).

Each finished (method, seed) run is appended at once to ``records.jsonl``; ``summary.json`` (means, 95% intervals,
paired differences to full fine-tuning, to LoRA and to the pretrained model) is rewritten after each.
"""

from __future__ import annotations

import contextlib
import copy
import io
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo.evidence.records import (
    append_record,
    check_methods_and_seeds,
    paired_row,
    read_records,
    save_summary,
    summarise,
)

IMAGENET = "ImageNet backbone (no face training)"
START = "HR face model (start, no LR adaptation)"
FULL, LORA, PETAL = "full fine-tuning", "LoRA", "PETAL"
METHODS = (FULL, LORA, PETAL)
ORDER = (IMAGENET, START, *METHODS)
FAR = 0.01
PROTOCOLS = ("HR-HR", "LR-HR", "LR-LR")
METRICS = (
    *(f"{p} TAR@FAR={FAR:g}" for p in PROTOCOLS),
    *(f"{p} accuracy" for p in PROTOCOLS),
    "HR-HR retention",
)
TARGETS = ["_expand_conv", "_project_conv", "_conv_head"]  # the tail's 1x1 convolutions (groups = 1)
ENTRY = "evidence/petal_strong"
DATASET = "ORL faces, EfficientNet-lite0 (ImageNet)"


@dataclass(frozen=True)
class StrongBackboneSetup:
    """Budget and protocol of evidence experiment 6.

    Args:
        methods: which of `METHODS` to train (the untouched pretrained model is always verified).
        seeds: seeds (each: a split of the people, a head initialisation and a data order shared by every method).
        held_out: people never trained on, verified.
        image_height, image_width: the size the faces are resized to before the backbone.
        frozen_blocks: EfficientNet-lite0 blocks (of 16) kept frozen and run once; the rest is trained.
        hr_epochs: epochs of the start model's training on the training people's HR images.
        hr_learning_rate: its AdamW learning rate (the margin-heads demo's).
        epochs: epochs over the training people's LR copies (each method).
        batch_size: images per step.
        learning_rate: AdamW learning rate of LoRA and PETAL (and of the ArcFace head).
        full_lr_scale: full fine-tuning's learning rate is `learning_rate` times this.
        weight_decay: AdamW weight decay (the paper's scripts use 0.1).
        rank: LoRA rank, and the rank of each PETAL branch.
        lr_factors: downsampling factors of the LR training copies.
        eval_factor: downsampling factor of the LR images at verification.
    """

    methods: tuple[str, ...] = METHODS
    seeds: int = 5
    held_out: int = 10
    image_height: int = 112
    image_width: int = 96
    frozen_blocks: int = 13
    epochs: int = 5
    batch_size: int = 32
    hr_epochs: int = 5
    hr_learning_rate: float = 3e-4
    learning_rate: float = 5e-4
    full_lr_scale: float = 0.1
    weight_decay: float = 0.1
    rank: int = 8
    lr_factors: tuple[int, ...] = (2, 4, 8)
    eval_factor: int = 4


@dataclass
class FaceFeatures:
    """The frozen blocks' outputs for every image, per view: "HR" and "LR<f>" for each factor f, each also
    mirrored ("... mirrored"); the images' quality scores (sharpness) per view; the identity labels."""

    maps: dict[str, Tensor]
    sharpness: dict[str, Tensor]
    labels: Tensor


class Tail(nn.Module):
    """EfficientNet-lite0 after its frozen blocks, with an ArcFace head: ``forward(x)`` is the pooled 1,280-d
    embedding (the untouched model's own features), ``forward(x, labels)`` the ArcFace loss."""

    def __init__(self, backbone: Any, frozen_blocks: int, classes: int) -> None:
        from hf_margin.heads import build_head

        super().__init__()
        self.blocks = nn.ModuleList(copy.deepcopy(list(backbone._blocks[frozen_blocks:])))
        self._conv_head = copy.deepcopy(backbone._conv_head)
        self.bn = copy.deepcopy(backbone._bn1)
        self.activation = copy.deepcopy(backbone._swish)
        self.margin_head = build_head("arcface", self._conv_head.out_channels, classes)
        for parent in [self, *self.blocks]:
            for name in TARGETS:
                if hasattr(parent, name):
                    setattr(parent, name, _plain_conv(getattr(parent, name)))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        for block in self.blocks:
            x = block(x)
        embeddings = self.activation(self.bn(self._conv_head(x))).mean((2, 3))
        return embeddings if labels is None else self.margin_head(embeddings, labels)


def _plain_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """A 1x1 convolution of the weights package (a subclass whose padding is the identity) as a plain `nn.Conv2d`
    with the same weights: peft's LoRA builds its factors with the base layer's class, which this subclass refuses."""
    if conv.kernel_size != (1, 1) or conv.groups != 1:
        raise ValueError(f"expected a 1x1 convolution with groups=1, got {conv}")
    plain = nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None)
    plain.load_state_dict(conv.state_dict(), strict=False)
    return plain


def frozen_features(data: Any, setup: StrongBackboneSetup) -> tuple[Any, FaceFeatures]:
    """The backbone and `FaceFeatures` of every image of `data` (an `IdentityImages`), computed once."""
    from hf_margin.demo.data.pretrained import efficientnet_lite0, grey_to_efficientnet_input
    from hf_margin.demo.margin_heads import frozen_block_features
    from hf_margin.demo.petal import degrade
    from hf_margin.tuners.petal.quality import sharpness_score

    with contextlib.redirect_stdout(io.StringIO()):  # the weights package prints a line on load
        backbone = efficientnet_lite0()
    hr = grey_to_efficientnet_input(torch.from_numpy(data.images), (setup.image_height, setup.image_width))
    views = {"HR": hr} | {f"LR{f}": degrade(hr, f) for f in sorted({*setup.lr_factors, setup.eval_factor})}
    maps: dict[str, Tensor] = {}
    for name, images in views.items():
        maps[name] = frozen_block_features(backbone, images, setup.frozen_blocks)
        maps[f"{name} mirrored"] = frozen_block_features(backbone, images.flip(-1), setup.frozen_blocks)
    sharpness = {name: sharpness_score(images.add(1).div(2)) for name, images in views.items()}
    return backbone, FaceFeatures(maps, sharpness, torch.from_numpy(data.labels).long())


def split_people(people: int, held_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed's held-out people and training people (a seeded permutation of ``range(people)``)."""
    order = np.random.default_rng(seed).permutation(people)
    return np.sort(order[:held_out]), np.sort(order[held_out:])


@dataclass
class Samples:
    """Training samples: frozen maps, their mirror images' maps, labels 0..K-1 and quality q."""

    maps: Tensor
    mirrored: Tensor
    labels: Tensor
    quality: Tensor


@dataclass
class SeedData:
    """One seed's training samples (HR images and LR copies of the training people) and the held-out people's HR
    and LR maps (with mirrors and q)."""

    hr_train: Samples
    lr_train: Samples
    test: dict[str, tuple[Tensor, Tensor, Tensor]]  # "HR" / "LR": (maps, mirrored maps, q)
    test_labels: Tensor
    classes: int


def seed_data(features: FaceFeatures, setup: StrongBackboneSetup, seed: int) -> SeedData:
    """Split the people for `seed`; calibrate q on the training people's HR and LR images."""
    from hf_margin.tuners.petal.quality import QualityCalibration

    people = int(features.labels.max()) + 1
    held, trained = split_people(people, setup.held_out, seed)
    is_train = torch.from_numpy(np.isin(features.labels.numpy(), trained))
    is_test = torch.from_numpy(np.isin(features.labels.numpy(), held))
    relabel = torch.full((people,), -1, dtype=torch.long)
    relabel[torch.from_numpy(trained)] = torch.arange(len(trained))
    lr_views = [f"LR{f}" for f in setup.lr_factors]
    calibration = QualityCalibration.fit(torch.cat([features.sharpness[v][is_train] for v in ["HR", *lr_views]]))

    def samples(views: list[str]) -> Samples:
        return Samples(
            torch.cat([features.maps[v][is_train] for v in views]),
            torch.cat([features.maps[f"{v} mirrored"][is_train] for v in views]),
            relabel[features.labels[is_train]].repeat(len(views)),
            torch.cat([calibration(features.sharpness[v][is_train]) for v in views]),
        )

    test = {}
    for name, view in (("HR", "HR"), ("LR", f"LR{setup.eval_factor}")):
        quality = calibration(features.sharpness[view][is_test])
        test[name] = (features.maps[view][is_test], features.maps[f"{view} mirrored"][is_test], quality)
    return SeedData(samples(["HR"]), samples(lr_views), test, features.labels[is_test], len(trained))


def adapt(method: str, start: Tail, setup: StrongBackboneSetup) -> nn.Module:
    """A copy of the start model as `method` trains it: whole, or wrapped by peft's LoRA or PETAL (the ArcFace
    head trained in full by every method)."""
    from peft import LoraConfig, get_peft_model

    from hf_margin.tuners.petal import PetalConfig

    model: nn.Module = copy.deepcopy(start)
    if method == FULL:
        return model
    if method == LORA:
        config: Any = LoraConfig(
            r=setup.rank, lora_alpha=setup.rank, target_modules=TARGETS, modules_to_save=["margin_head"]
        )
    else:
        config = PetalConfig(r=setup.rank, target_modules=TARGETS, modules_to_save=["margin_head"])
    return get_peft_model(model, config)


def _keep_batch_norm_statistics(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()


def train(
    model: nn.Module, samples: Samples, epochs: int, lr: float, setup: StrongBackboneSetup, seed: int, petal: bool
) -> float:
    """`epochs` epochs of AdamW on `samples` (each drawn mirrored or not at random); the data order and flips come
    from `seed` alone, so every method of a seed sees the same batches. Returns the seconds it took."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=setup.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    _keep_batch_norm_statistics(model)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(samples.maps), generator=generator)
        mirror = torch.rand(len(samples.maps), generator=generator) < 0.5
        for batch in order.split(setup.batch_size):
            if len(batch) < 2:
                continue
            x = torch.where(mirror[batch].view(-1, 1, 1, 1), samples.mirrored[batch], samples.maps[batch])
            extra = {"petal_quality": samples.quality[batch]} if petal else {}
            loss = model(x, samples.labels[batch], **extra)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def verify(model: nn.Module, data: SeedData, petal: bool) -> dict[str, float]:
    """TAR at FAR 1e-2 and verification accuracy of the held-out people on HR-HR, LR-HR and LR-LR pairs."""
    from hf_margin.demo.petal import cross_pair_scores
    from hf_margin.metrics import tar_at_far, verification_accuracy

    model.eval()
    embeddings = {}
    with torch.no_grad():
        for name, (maps, mirrored, quality) in data.test.items():
            extra = {"petal_quality": quality} if petal else {}
            embeddings[name] = model(maps, **extra) + model(mirrored, **extra)
    pairs = {
        "HR-HR": cross_pair_scores(embeddings["HR"], embeddings["HR"], data.test_labels, same_set=True),
        "LR-HR": cross_pair_scores(embeddings["LR"], embeddings["HR"], data.test_labels, same_set=False),
        "LR-LR": cross_pair_scores(embeddings["LR"], embeddings["LR"], data.test_labels, same_set=True),
    }
    metrics = {f"{p} TAR@FAR={FAR:g}": float(tar_at_far(s, y, FAR)) for p, (s, y) in pairs.items()}
    return metrics | {f"{p} accuracy": float(verification_accuracy(s, y)[0]) for p, (s, y) in pairs.items()}


def start_model(backbone: Any, data: SeedData, setup: StrongBackboneSetup, seed: int) -> tuple[Tail, float]:
    """The seed's start model: the ImageNet tail with an ArcFace head, fully trained for `hr_epochs` on the
    training people's HR images (a face model, as PETALface starts from); and the seconds it took."""
    torch.manual_seed(seed)
    model = Tail(backbone, setup.frozen_blocks, data.classes)
    seconds = train(model, data.hr_train, setup.hr_epochs, setup.hr_learning_rate, setup, seed, petal=False)
    return model, seconds


def fit_and_verify(
    method: str, backbone: Any, start: Tail, data: SeedData, setup: StrongBackboneSetup, seed: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Verify `method` on the seed's held-out people, after adapting the start model to the LR copies (the two
    references are verified as they are); return (metrics, cost)."""
    trainable = 0
    seconds = 0.0
    if method == IMAGENET:
        model: nn.Module = Tail(backbone, setup.frozen_blocks, data.classes)
    elif method == START:
        model = start
    else:
        torch.manual_seed(seed)  # the adapters' initialisation of the seed
        model = adapt(method, start, setup)
        lr = setup.learning_rate * (setup.full_lr_scale if method == FULL else 1.0)
        seconds = train(model, data.lr_train, setup.epochs, lr, setup, seed, petal=method == PETAL)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return verify(model, data, method == PETAL), {"seconds": seconds, "trainable_parameters": float(trainable)}


def _check(setup: StrongBackboneSetup) -> None:
    check_methods_and_seeds(setup.methods, METHODS, setup.seeds)
    if not 0 <= setup.frozen_blocks <= 15:
        raise ValueError(f"`frozen_blocks` must be in [0, 15] (EfficientNet-lite0 has 16), got {setup.frozen_blocks}")
    if not setup.lr_factors or min(setup.lr_factors) < 2 or setup.eval_factor < 2:
        raise ValueError(
            f"`lr_factors` (got {setup.lr_factors}) and `eval_factor` (got {setup.eval_factor}) must be >= 2"
        )


def run(context: DemoContext, setup: StrongBackboneSetup | None = None) -> list[DemoRow]:
    """Run every missing (method, seed) record, appending each to records.jsonl; return the table rows."""
    from hf_margin.demo.data.faces import load_identities

    setup = setup or StrongBackboneSetup()
    _check(setup)
    data = load_identities(context.data_dir)
    if data.name != "ORL faces":
        raise ValueError(
            "evidence 6 needs the ORL faces (8x8 digits have no resolution to lose): set `data_dir` to the folder "
            "holding att_faces/"
        )
    if not 2 <= setup.held_out <= data.num_identities - 2:
        raise ValueError(f"`held_out` must be in [2, {data.num_identities - 2}], got {setup.held_out}")
    methods = [IMAGENET, START, *(m for m in METHODS if m in setup.methods)]
    records_path = context.out_dir / "records.jsonl"
    done = {(r["method"], r["seed"]) for r in read_records(records_path)}
    todo = [(m, s) for s in range(setup.seeds) for m in methods if (m, s) not in done]
    bar = context.progress(total=len(methods) * setup.seeds, desc="evidence: PETAL strong backbone", unit="run")
    bar.update(len(methods) * setup.seeds - len(todo))
    if todo:
        backbone, features = frozen_features(data, setup)
    for seed in sorted({s for _, s in todo}):
        per_seed = seed_data(features, setup, seed)
        start, start_seconds = start_model(backbone, per_seed, setup, seed)
        reference = verify(start, per_seed, petal=False)[METRICS[0]]  # the start model's HR-HR TAR
        for method in (m for m, s in todo if s == seed):
            metrics, cost = fit_and_verify(method, backbone, start, per_seed, setup, seed)
            if method == START:
                cost["seconds"] = start_seconds
            record = {"setting": DATASET, "method": method, "seed": seed, **metrics, **cost}
            record["HR-HR retention"] = metrics[METRICS[0]] / reference if reference > 0 else 0.0
            append_record(records_path, record)
            write_summary(context, setup)
            bar.update()
    bar.close()
    return rows_from_records(read_records(records_path))


def _compare(records: list[dict[str, Any]], baseline: str) -> dict[str, Any]:
    """`summarise` of the records with every method paired with `baseline`."""
    return summarise(
        records, setting="setting", method="method", metrics=METRICS, baseline_of=lambda _: baseline, order=ORDER
    ).get(DATASET, {})


def write_summary(context: DemoContext, setup: StrongBackboneSetup) -> None:
    """summary.json: per method, each metric's mean with its 95% interval and the paired differences to full
    fine-tuning, to LoRA and to the start model (each with its verdict)."""
    records = read_records(context.out_dir / "records.jsonl")
    results: dict[str, Any] = {}
    for baseline in (START, FULL, LORA):
        for method, entry in _compare(records, baseline).items():
            results.setdefault(method, {k: v for k, v in entry.items() if k != "baseline" and " minus " not in k})
            results[method] |= {k: v for k, v in entry.items() if " minus " in k}
    summary = {"setup": asdict(setup), "dataset": DATASET, "results": results}
    save_summary(context.out_dir, summary)


def rows_from_records(records: list[dict[str, Any]]) -> list[DemoRow]:
    """Rows of PETAL against LoRA and full fine-tuning, and LoRA against full fine-tuning, on each protocol's
    TAR: means over the seeds both have; the note gives the paired difference with its 95% interval."""
    by_key = {(r["method"], r["seed"]): r for r in records}
    rows = []
    for method, baseline in ((PETAL, LORA), (PETAL, FULL), (LORA, FULL)):
        for metric in METRICS[:3]:
            names = (method, baseline, metric)
            row = paired_row(by_key, (method,), (baseline,), metric, entry=ENTRY, names=names, dataset=DATASET)
            rows += [row] if row else []
    return rows
