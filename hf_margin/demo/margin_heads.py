"""Demo entry: open-set face verification with the margin heads.

Protocol: the identities are split into groups; for each fold one group is held out (never seen in
training) and the rest train the last block and head convolution of an ImageNet-pretrained EfficientNet-lite0
(the earlier blocks stay frozen and are run once), a 256-d embedding layer and the head. The held-out
people are verified over all pairs of their images: TAR at FAR = 1% and 10-fold verification accuracy on
balanced pairs. Every head gets the same data, initialisation, optimiser and budget, and the paper's
margins and scale. On the ORL faces (40 people) a fold holds out 10 people; on sklearn's digits each
digit plays a person.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._processes import is_main_process, process_rank_and_count, run_split
from hf_margin.demo.data.faces import (
    IdentityImages,
    cap_per_identity,
    load_identities,
)
from hf_margin.demo.data.pretrained import efficientnet_lite0, grey_to_efficientnet_input
from hf_margin.heads import build_head
from hf_margin.metrics import pair_scores, roc_curve, tar_at_far, verification_accuracy

# display name -> (head type, arguments beyond the paper defaults)
HEADS: dict[str, tuple[str, dict[str, Any]]] = {
    "softmax CE": ("softmax", {}),
    "ArcFace": ("arcface", {}),
    "CosFace": ("cosface", {}),
    "ElasticArcFace": ("elastic_arcface", {}),
    "ElasticCosFace": ("elastic_cosface", {}),
    "AdaFace": ("adaface", {}),
    # the recipe's extras: insightface's combined margin, and Partial FC around ArcFace with half the centres
    "combined margin (1, 0.3, 0.2)": ("combined", {"m1": 1.0, "m2": 0.3, "m3": 0.2}),
    "Partial FC ArcFace (50% of centres)": ("partial_fc", {"margin_head": "arcface", "sample_rate": 0.5}),
}
DEMO_HEADS = ("softmax CE", "ArcFace", "CosFace", "ElasticArcFace", "ElasticCosFace", "AdaFace")
BASELINE = "softmax CE"
FAR = 0.01


@dataclass(frozen=True)
class VerificationSetup:
    """Budget and protocol of one comparison.

    Args:
        folds: how many held-out identity groups to evaluate (at most `groups`).
        groups: the identities are split into this many groups.
        epochs: training epochs per head and fold.
        seeds: seeds per fold (results are averaged).
        learning_rate: AdamW learning rate.
        batch_size: training batch size.
        embedding_size: width of the embedding layer.
        image_height: height of the image fed to the backbone.
        image_width: width of the image fed to the backbone.
        frozen_blocks: EfficientNet blocks run once and kept frozen (of 16).
        max_images_per_identity: cap, to keep large identity sets (digits) small.
        heads: names of `HEADS` to train (softmax CE, the baseline, is always trained).
    """

    folds: int = 1
    groups: int = 4
    epochs: int = 6
    seeds: int = 1
    learning_rate: float = 3e-4
    batch_size: int = 32
    embedding_size: int = 256
    image_height: int = 112
    image_width: int = 96
    frozen_blocks: int = 15
    max_images_per_identity: int = 10
    heads: tuple[str, ...] = DEMO_HEADS


@dataclass
class HeadResult:
    """Means over the (fold, seed) runs, their standard deviations, training time and the pooled ROC."""

    tar_at_far: float
    tar_at_far_std: float
    accuracy: float
    accuracy_std: float
    seconds: float
    far: list[float]
    tar: list[float]


class _TrainableTail(nn.Module):
    """The unfrozen end of EfficientNet-lite0 plus an embedding layer (dropout, linear, batch norm)."""

    def __init__(self, backbone: Any, frozen_blocks: int, embedding_size: int) -> None:
        super().__init__()
        self.blocks = copy.deepcopy(backbone._blocks[frozen_blocks:])
        self.conv_head = copy.deepcopy(backbone._conv_head)
        self.bn = copy.deepcopy(backbone._bn1)
        self.activation = copy.deepcopy(backbone._swish)
        self.embed = nn.Sequential(
            nn.Dropout(0.2),
            nn.Linear(self.conv_head.out_channels, embedding_size),
            nn.BatchNorm1d(embedding_size),
        )

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        x = self.activation(self.bn(self.conv_head(x)))
        return self.embed(x.mean((2, 3)))


def frozen_block_features(backbone: Any, images: Tensor, frozen_blocks: int) -> Tensor:
    """The feature maps of EfficientNet `backbone`'s stem and first `frozen_blocks` blocks for `images`, without
    gradients, in batches of 100."""
    with torch.no_grad():
        outputs = []
        for batch in images.split(100):
            x = backbone._swish(backbone._bn0(backbone._conv_stem(batch)))
            for block in backbone._blocks[:frozen_blocks]:
                x = block(x)
            outputs.append(x)
        return torch.cat(outputs)


@dataclass
class _FoldSeedResult:
    """One (held-out fold, seed) run of every head: pair scores and training seconds by head; the frozen
    backbone's pair scores on seed 0."""

    scores: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    zero_shot: tuple[np.ndarray, np.ndarray] | None = None


def compare_heads(
    data: IdentityImages, setup: VerificationSetup, progress: Any = None
) -> tuple[dict[str, HeadResult], HeadResult]:
    """Train every head of `HEADS` under `setup`; return their results and the frozen backbone's (no training).

    Faces are also used mirrored (training augmentation, and summed embeddings at test time); digits are not.
    """
    data = cap_per_identity(data, setup.max_images_per_identity)
    mirror = data.name == "ORL faces"
    with contextlib.redirect_stdout(io.StringIO()):  # the weights package prints a line on load
        backbone = efficientnet_lite0()
    images = grey_to_efficientnet_input(torch.from_numpy(data.images), (setup.image_height, setup.image_width))
    features = frozen_block_features(backbone, images, setup.frozen_blocks)
    mirrored = frozen_block_features(backbone, images.flip(-1), setup.frozen_blocks) if mirror else None
    labels = torch.from_numpy(data.labels)
    group_of = labels * setup.groups // data.num_identities  # contiguous identity groups

    unknown = [name for name in setup.heads if name not in HEADS]
    if unknown:
        raise ValueError(f"unknown `heads` {unknown}; known: {', '.join(HEADS)}")
    heads = {name: HEADS[name] for name in HEADS if name in setup.heads or name == BASELINE}
    runs = [(fold, seed) for fold in range(min(setup.folds, setup.groups)) for seed in range(setup.seeds)]
    _, processes = process_rank_and_count()
    own_runs = len(range(0, len(runs), processes))  # the main process's share (launched: runs are split)
    show = progress is not None and is_main_process()
    bar = progress(total=own_runs * len(heads), desc="margin heads", unit="run", leave=False) if show else None

    def fold_and_seed(run: tuple[int, int]) -> _FoldSeedResult:
        fold, seed = run
        held_out = group_of == fold
        train_ids = torch.unique(labels[~held_out])
        relabel = torch.full((data.num_identities,), -1, dtype=torch.long)
        relabel[train_ids] = torch.arange(len(train_ids))
        x_train, y_train = features[~held_out], relabel[labels[~held_out]]
        if mirrored is not None:
            x_train, y_train = torch.cat([x_train, mirrored[~held_out]]), torch.cat([y_train, y_train])
        result = _FoldSeedResult()
        if seed == 0:
            reference = _backbone_embeddings(backbone, features[held_out], setup.frozen_blocks)
            result.zero_shot = pair_scores(reference, labels[held_out])
        for name, (head_type, head_kwargs) in heads.items():
            torch.manual_seed(1000 * fold + seed)
            tail = _TrainableTail(backbone, setup.frozen_blocks, setup.embedding_size)
            head = _make_head(head_type, setup.embedding_size, len(train_ids), head_kwargs)
            start = time.perf_counter()
            _train(tail, head, x_train, y_train, setup)
            result.seconds[name] = time.perf_counter() - start
            tail.eval()
            with torch.no_grad():
                embeddings = tail(features[held_out])
                if mirrored is not None:
                    embeddings = embeddings + tail(mirrored[held_out])
            result.scores[name] = pair_scores(embeddings, labels[held_out])
            if bar is not None:
                bar.update()
        return result

    done = run_split(runs, fold_and_seed)  # launched on several processes: each does its share
    if bar is not None:
        bar.close()
    scores = {name: [r.scores[name] for r in done] for name in heads}
    seconds = {name: sum(r.seconds[name] for r in done) for name in heads}
    zero_shot = [r.zero_shot for r in done if r.zero_shot is not None]
    results = {name: _summarise(scores[name], seconds[name]) for name in heads}
    return results, _summarise(zero_shot, 0.0)


def _make_head(head_type: str, embedding_size: int, num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    if head_type == "partial_fc":
        from hf_margin.heads import PartialFCHead

        return PartialFCHead(embedding_size=embedding_size, num_classes=num_classes, **kwargs)
    return build_head(head_type, embedding_size, num_classes, **kwargs)


def _backbone_embeddings(backbone: Any, features: Tensor, frozen_blocks: int) -> Tensor:
    """The pretrained network's own pooled features, untrained: the zero-shot reference."""
    with torch.no_grad():
        x = features
        for block in backbone._blocks[frozen_blocks:]:
            x = block(x)
        return backbone._swish(backbone._bn1(backbone._conv_head(x))).mean((2, 3))


def _train(tail: nn.Module, head: nn.Module, x: Tensor, y: Tensor, setup: VerificationSetup) -> None:
    optimizer = torch.optim.AdamW([*tail.parameters(), *head.parameters()], lr=setup.learning_rate, weight_decay=5e-4)
    tail.train()
    head.train()
    for _ in range(setup.epochs):
        for batch in torch.randperm(len(x)).split(setup.batch_size):
            if len(batch) < 2:  # batch norm needs two samples
                continue
            loss = head(tail(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def _summarise(fold_scores: list[tuple[np.ndarray, np.ndarray]], seconds: float) -> HeadResult:
    """Mean TAR@FAR and accuracy over folds; the ROC of all folds' pairs pooled (subsampled for plotting)."""
    tars = [tar_at_far(s, y, FAR) for s, y in fold_scores]
    accuracies = [verification_accuracy(s, y)[0] for s, y in fold_scores]
    far, tar = roc_curve(np.concatenate([s for s, _ in fold_scores]), np.concatenate([y for _, y in fold_scores]))
    step = max(1, len(far) // 400)
    return HeadResult(
        float(np.mean(tars)),
        float(np.std(tars)),
        float(np.mean(accuracies)),
        float(np.std(accuracies)),
        seconds,
        far[::step].tolist(),
        tar[::step].tolist(),
    )


def plot_roc(results: dict[str, HeadResult], zero_shot: HeadResult, title: str, path: Any) -> None:
    """ROC curves (log FAR) of every head and of the untrained backbone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, result in {**results, "frozen backbone": zero_shot}.items():
        style = ":" if name == "frozen backbone" else "-"
        ax.plot(result.far, result.tar, style, label=f"{name} (TAR@1% {result.tar_at_far:.3f})")
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.axvline(FAR, color="grey", linewidth=0.5)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def rows_from_results(results: dict[str, HeadResult], dataset: str) -> list[DemoRow]:
    """Two table rows (TAR@FAR, accuracy) per margin head, each against softmax CE."""
    base = results[BASELINE]
    rows = []
    for name, result in results.items():
        if name == BASELINE:
            continue
        rows.append(
            DemoRow(
                "margin_heads",
                name,
                BASELINE,
                f"TAR@FAR={FAR:g}",
                result.tar_at_far,
                base.tar_at_far,
                result.seconds,
                dataset,
            )
        )
        rows.append(
            DemoRow(
                "margin_heads",
                name,
                BASELINE,
                "verification acc",
                result.accuracy,
                base.accuracy,
                result.seconds,
                dataset,
            )
        )
    return rows


def _scores(result: HeadResult) -> dict[str, float]:
    return {
        "tar_at_far": result.tar_at_far,
        "tar_at_far_std": result.tar_at_far_std,
        "accuracy": result.accuracy,
        "accuracy_std": result.accuracy_std,
    }


def run(context: DemoContext, setup: VerificationSetup | None = None) -> list[DemoRow]:
    """The demo entry: a short budget (1 held-out fold of 10 people); the recipe runs the full comparison."""
    setup = setup or VerificationSetup()
    data = load_identities(context.data_dir)
    results, zero_shot = compare_heads(data, setup, context.progress)
    title = f"{data.name}: verification of unseen identities ({setup.folds} folds)"
    if not is_main_process():  # launched on several processes: the main one writes
        return []
    plot_roc(results, zero_shot, title, context.out_dir / "margin_heads_roc.png")
    report = {
        "dataset": data.name,
        "setup": asdict(setup),
        "heads": {name: _scores(r) | {"seconds": r.seconds} for name, r in results.items()},
        "frozen_backbone": _scores(zero_shot),
    }
    (context.out_dir / "margin_heads.json").write_text(json.dumps(report, indent=2))
    return rows_from_results(results, data.name)
