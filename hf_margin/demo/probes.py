"""Demo entry: the shared-variance naive Bayes probe against logistic regression on frozen features, by shots.

Zheng et al., "Revisiting Discriminative vs. Generative Classifiers" (ICML 2023, arXiv 2302.02334) predict that the
generative probe approaches its asymptotic error with fewer samples and logistic regression wins with more. Learning
curves (test accuracy at 1, 2, 5, 10, 20, 50 training rows per class, mean over seeds) on two real feature sets:

- Rotten Tomatoes snippets (balanced fresh / rotten, split by movie) through the frozen all-MiniLM-L6-v2 (cached);
- the ORL faces (40 people; 5 of the 10 images per person held out, so at most 5 shots) or, when absent,
  sklearn's digits (half of each digit's images held out), through the frozen ImageNet EfficientNet-lite0
  (pooled 1,280-d, cached).

Both probes see the same rows, min-max scaled on them; logistic regression is the paper's sklearn baseline.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from hf_margin._validation import check_choice
from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.metrics.generative_probe import learning_curve

ENTRY = "probes"
OURS, BASELINE = "naive Bayes", "logistic regression"


@dataclass(frozen=True)
class ProbesSetup:
    """Budget: shots per class, seeds, Rotten Tomatoes rows per class, the least test images per identity."""

    shots_per_class: tuple[int, ...] = (1, 2, 5, 10, 20, 50)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    text_rows: int = 1000
    test_images_per_identity: int = 5
    tasks: tuple[str, ...] = ("text", "images")


FeatureSplit = tuple[Tensor, Tensor, Tensor, Tensor, str]


def text_features(setup: ProbesSetup) -> FeatureSplit:
    """Balanced Rotten Tomatoes MiniLM features, split by movie (the imbalance demo's loader at ratio 1)."""
    from hf_margin.demo.imbalance import ImbalanceSetup, text_task

    task = text_task(ImbalanceSetup(ratio=1.0, text_rows=setup.text_rows, seed=0))
    return task.train_x, task.train_y, task.test_x, task.test_y, "Rotten Tomatoes (MiniLM features)"


def image_features(setup: ProbesSetup, data_dir: Path | None = None) -> FeatureSplit:
    """Frozen EfficientNet-lite0 features of the ORL faces (or digits); the last half of each identity's images
    (at least `test_images_per_identity`) are the test set."""
    from hf_margin.demo.data.faces import load_identities
    from hf_margin.demo.few_shot import cached_features

    data = load_identities(data_dir)
    features, labels = cached_features(data, 96).float(), torch.from_numpy(data.labels).long()
    test = torch.zeros(len(labels), dtype=torch.bool)
    for label in range(int(labels.max()) + 1):
        rows = torch.nonzero(labels == label).flatten()
        test[rows[-max(setup.test_images_per_identity, len(rows) // 2) :]] = True
    name = f"{data.name} (EfficientNet-lite0 features)"
    return features[~test], labels[~test], features[test], labels[test], name


def run(context: DemoContext, setup: ProbesSetup | None = None) -> list[DemoRow]:
    """The demo entry: learning curves per task, ``probes.json`` (accuracy per seed) and the table rows."""
    setup = setup or ProbesSetup()
    for task in setup.tasks:
        check_choice(task, "tasks", ("text", "images"))
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    rows = []
    loaders = {"text": lambda: text_features(setup), "images": lambda: image_features(setup, context.data_dir)}
    for task in context.progress(setup.tasks, desc="probes demo", unit="task", leave=False):
        train_x, train_y, test_x, test_y, dataset = loaders[task]()
        fewest = int(torch.bincount(train_y).min())
        shots = [s for s in setup.shots_per_class if s <= fewest]  # ORL has 5 training images per person
        start = time.perf_counter()
        with single_thread(), threadpool_limits(1):  # small BLAS calls: extra threads only contend (5x-25x slower)
            curve = learning_curve(train_x, train_y, test_x, test_y, shots, setup.seeds)
        seconds = time.perf_counter() - start
        curves[dataset] = {m: {str(s): v for s, v in c.items()} for m, c in curve.items()}
        for s in shots:
            ours, theirs = float(np.mean(curve[OURS][s])), float(np.mean(curve[BASELINE][s]))
            rows.append(
                DemoRow(
                    ENTRY,
                    f"NB probe, {s}/class",
                    f"LR probe, {s}/class",
                    "accuracy",
                    ours,
                    theirs,
                    seconds / len(shots),
                    dataset,
                )
            )
    context.out_dir.mkdir(parents=True, exist_ok=True)
    report = {"setup": asdict(setup), "curves": curves}
    (context.out_dir / f"{ENTRY}.json").write_text(json.dumps(report, indent=2))
    return rows
