"""Demo entry: dataset condensation with contrastive signals (DCC, arXiv 2202.02916) vs class-wise gradient
matching (DC, arXiv 2006.05929) vs random real images, on scikit-learn's 8x8 digits.

The stratified 80% training split of the digits (pixels in [0, 1]) is condensed to `images_per_class` synthetic
images per class with `hf_margin.trainers.condensation.condense` and a small ConvNet; then a fresh ConvNet is trained
from scratch on each synthetic set (and on the random real images the condensation starts from) and scored on the
held-out 20%. The loops are far shorter than the paper's (1,000 networks), so DCC's outer warm-up is scaled with
them (`warmup_share` of the networks, the paper's 250 / 1000). No DSA augmentation.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.demo.robustness import RobustnessSetup, digits_split
from hf_margin.trainers.condensation import condense

DATASET = "sklearn digits 8x8 (small ConvNet)"


@dataclass(frozen=True)
class CondensationSetup:
    """Budget of the comparison.

    Args:
        images_per_class: synthetic set sizes to compare.
        outer_loop: networks per condensation.
        inner_loop: matching steps per network.
        network_steps: network updates between matching steps.
        warmup_share: share of the networks matched with DC before DCC (the paper: 250 of 1,000).
        batch_real: real images per class per matching step.
        train_steps: full-batch Adam steps of the evaluation ConvNet on a synthetic set.
        eval_seeds: evaluation networks (different initialisations) averaged per set.
        seed: seed of the split, the condensation and the networks.
    """

    images_per_class: tuple[int, ...] = (1, 10)
    outer_loop: int = 16
    inner_loop: int = 10
    network_steps: int = 5
    warmup_share: float = 0.25
    batch_real: int = 32
    train_steps: int = 150
    eval_seeds: int = 2
    seed: int = 0


def conv_net() -> nn.Module:
    """A small ConvNet for 1 x 8 x 8 images (two conv-ReLU-avgpool blocks and a linear classifier)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 10),
    )


def evaluate(
    images: torch.Tensor, labels: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, setup: CondensationSetup
) -> float:
    """Mean test accuracy of `eval_seeds` fresh ConvNets trained on (images, labels)."""
    accuracies = []
    for offset in range(setup.eval_seeds):
        torch.manual_seed(setup.seed + 1000 + offset)
        model = conv_net()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(setup.train_steps):
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            accuracies.append(float((model(test_x).argmax(1) == test_y).float().mean()))
    return sum(accuracies) / len(accuracies)


def run(context: DemoContext, setup: CondensationSetup = CondensationSetup()) -> list[DemoRow]:
    split = digits_split(RobustnessSetup(seed=setup.seed))
    train_x, test_x = split["train_x"].view(-1, 1, 8, 8), split["test_x"].view(-1, 1, 8, 8)
    results: dict[str, dict[str, float]] = {}
    rows: list[DemoRow] = []
    with single_thread():
        for ipc in context.progress(setup.images_per_class, desc="condensation demo", unit="ipc", leave=False):
            accuracy: dict[str, float] = {}
            seconds: dict[str, float] = {}
            for method in ("dc", "dcc"):
                start = time.perf_counter()
                torch.manual_seed(setup.seed)
                condensed = condense(
                    conv_net,
                    train_x,
                    split["train_y"],
                    ipc,
                    method=method,
                    outer_loop=setup.outer_loop,
                    inner_loop=setup.inner_loop,
                    network_steps=setup.network_steps,
                    batch_real=setup.batch_real,
                    outer_warmup=round(setup.warmup_share * setup.outer_loop),
                    seed=setup.seed,
                    progress=False,
                )
                accuracy[method] = evaluate(condensed.images, condensed.labels, test_x, split["test_y"], setup)
                seconds[method] = time.perf_counter() - start
            # the random real images every condensation starts from (same seed: the same draw)
            initial = condense(
                conv_net,
                train_x,
                split["train_y"],
                ipc,
                outer_loop=1,
                inner_loop=1,
                lr_img=1e-30,
                seed=setup.seed,
                progress=False,
            )
            accuracy["random real"] = evaluate(initial.images, initial.labels, test_x, split["test_y"], setup)
            results[f"ipc {ipc}"] = {**accuracy, **{f"{m} seconds": s for m, s in seconds.items()}}
            for method, baseline in (("DCC", "DC"), ("DCC", "random real"), ("DC", "random real")):
                rows.append(
                    DemoRow(
                        "condensation",
                        f"{method} (ipc {ipc})",
                        f"{baseline} (ipc {ipc})",
                        "test accuracy",
                        accuracy[method.lower()],
                        accuracy[baseline.lower()],
                        seconds[method.lower()],
                        DATASET,
                    )
                )
    report = {"setup": asdict(setup), "dataset": DATASET, "results": results}
    (context.out_dir / "condensation.json").write_text(json.dumps(report, indent=2))
    return rows
