"""Demo entry: catalogue I's imbalance- and noise-robust losses against cross-entropy at the same budget, all
trained with `ClassificationLossTrainer`.

- "text": Rotten Tomatoes snippets, fresh (the minority, positive class) subsampled to `ratio` x the rotten ones
  (1:20 by default), split by movie; features from the frozen all-MiniLM-L6-v2 (computed once, cached); a linear
  head per method.
- "images": scikit-learn's 8x8 digits with a long-tailed training schedule (class i keeps ``n_max x
  ratio^(i/9)`` images, imbalance ratio 1/ratio), a balanced test set; a small CNN per method trained from scratch.

Methods: CE, class-balanced CE, focal, LDAM-DRW, AUC-M (one-vs-rest on digits), AnyLoss-F1, LDR-KL, ALDR-KL,
DatasetEquity-weighted CE (generalized focal weights from clustering the training features), comp-sum GCE. Each
trains from the same initialisation on the same rows in the same order for the same steps. With `noise`, the
noise-robust losses and CE are also trained with that share of training labels flipped to another class
(symmetric noise). Metrics on the clean test set: AUROC (binary; macro one-vs-rest for digits), F1 (of the
minority class; macro for digits) and balanced accuracy.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hf_margin._validation import check_choice
from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo.petal import cache_dir

BASELINE = "CE"
METHODS = (
    "CE",
    "class-balanced CE",
    "focal",
    "LDAM-DRW",
    "AUC-M",
    "AnyLoss-F1",
    "LDR-KL",
    "ALDR-KL",
    "generalized focal",
    "comp-sum GCE",
    "Z-loss",
    "CE + log-Z penalty",
)
NOISE_ROBUST = ("CE", "comp-sum GCE", "LDR-KL", "ALDR-KL")
ONE_SCORE = ("AUC-M", "AnyLoss-F1")  # methods that score one logit on a binary task


@dataclass(frozen=True)
class ImbalanceSetup:
    """Budget of the comparison (defaults: the demo's short run; the recipe passes more).

    Args:
        task: "text" (Rotten Tomatoes with MiniLM features) or "images" (long-tailed digits with a small CNN).
        methods: which of METHODS to train.
        noise: shares of flipped training labels to also train the noise-robust methods on (0 is always run).
        ratio: minority / majority size (text: fresh per rotten; images: the rarest / the commonest class).
        steps: optimizer steps per method.
        batch_size: rows per step.
        learning_rate: AdamW learning rate.
        auc_m_learning_rate: AUC-M's own learning rate, if different (from scratch at 1e-2 its sigmoid scores
            saturate and it stops learning; the AUC-M papers start from a CE-trained model instead).
        text_rows: Rotten Tomatoes majority-class snippets used (train and test together).
        seed: seed of the subsampling, the noise, the initialisation and the data order.
    """

    task: str = "text"
    methods: tuple[str, ...] = ("CE", "LDAM-DRW", "AUC-M", "AnyLoss-F1")
    noise: tuple[float, ...] = ()
    ratio: float = 0.05
    steps: int = 300
    batch_size: int = 64
    learning_rate: float = 1e-2
    auc_m_learning_rate: float | None = None
    text_rows: int = 4000
    seed: int = 0


@dataclass
class Task:
    """Training and test features, labels and the head to train."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    head: str


class Head(nn.Module):
    """A linear head on frozen text features, or a small CNN on 8x8 digits; returns ``{"logits": ...}``."""

    def __init__(self, kind: str, in_features: int, outputs: int) -> None:
        super().__init__()
        if kind == "linear":
            self.net: nn.Module = nn.Linear(in_features, outputs)
        else:
            self.net = nn.Sequential(
                nn.Unflatten(1, (1, 8, 8)),
                nn.Conv2d(1, 16, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(32 * 16, 64),
                nn.ReLU(),
                nn.Linear(64, outputs),
            )

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.net(features)}


def text_task(setup: ImbalanceSetup) -> Task:
    import pandas

    from hf_margin.demo.data.pretrained import cached_minilm_features
    from hf_margin.demo.data.rotten_tomatoes import load_snippets, movie_split

    snippets = load_snippets()
    rng = np.random.default_rng(setup.seed)
    rotten = snippets[snippets["label"] == 0].sample(setup.text_rows, random_state=setup.seed)
    fresh = snippets[snippets["label"] == 1].sample(
        max(2, round(setup.ratio * setup.text_rows)), random_state=setup.seed
    )
    rows = pandas.concat([rotten, fresh])
    rows = rows.iloc[rng.permutation(len(rows))]
    path = cache_dir() / f"rt_minilm_{setup.text_rows}_{setup.ratio}_{setup.seed}.npy"
    features = cached_minilm_features(rows["text"].tolist(), path)
    split = np.array([movie_split(str(m), {"train": 0.7, "test": 0.3}) for m in rows["movie"]])
    x, y = torch.from_numpy(features).float(), torch.as_tensor(rows["label"].to_numpy().copy())
    train, test = torch.from_numpy(split == "train"), torch.from_numpy(split == "test")
    return Task(x[train], y[train], x[test], y[test], 2, "linear")


def _image_task(setup: ImbalanceSetup) -> Task:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = torch.tensor(digits.data / 16.0, dtype=torch.float32), torch.as_tensor(digits.target)
    g = torch.Generator().manual_seed(setup.seed)
    order = torch.randperm(len(y), generator=g)
    train_rows, test_rows = [], []
    for label in range(10):
        rows = order[y[order] == label]
        test_rows.append(rows[:50])  # balanced test set
        keep = max(1, round(120 * setup.ratio ** (label / 9)))
        train_rows.append(rows[50 : 50 + keep])
    train, test = torch.cat(train_rows), torch.cat(test_rows)
    train = train[torch.randperm(len(train), generator=g)]
    return Task(x[train], y[train], x[test], y[test], 10, "cnn")


def with_noise(labels: torch.Tensor, share: float, classes: int, seed: int) -> torch.Tensor:
    """Symmetric label noise: `share` of the labels replaced by a different class drawn uniformly."""
    g = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(labels), generator=g) < share
    shift = torch.randint(1, classes, (len(labels),), generator=g)
    return torch.where(flip, (labels + shift) % classes, labels)


class PenalisedLoss(nn.Module):
    """A classification loss plus a penalty on the logits alone (e.g. CE + PaLM's log-partition z-loss)."""

    def __init__(self, loss: nn.Module, penalty: nn.Module) -> None:
        super().__init__()
        self.loss, self.penalty = loss, penalty

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, labels) + self.penalty(logits)


def make_loss(method: str, counts: list[int], rows: int, classes: int) -> nn.Module:
    """The loss module of one compared method (class counts of the training labels it sees)."""
    from hf_margin.losses import (
        ALDRKLLoss,
        AnyLoss,
        AUCMarginLoss,
        CompSumLoss,
        FocalLoss,
        LDAMLoss,
        LDRKLLoss,
        LogitZLoss,
        ZLoss,
    )

    losses: dict[str, Any] = {
        "CE": lambda: FocalLoss(gamma=0.0),
        "generalized focal": lambda: FocalLoss(gamma=0.0),  # + the DatasetEquity weight column
        "class-balanced CE": lambda: FocalLoss(gamma=0.0, class_counts=counts, beta=0.999),
        "focal": lambda: FocalLoss(gamma=2.0),
        "LDAM-DRW": lambda: LDAMLoss(counts, max_m=0.5, scale=1.0),
        "AUC-M": lambda: AUCMarginLoss(margin=1.0, score_type="logits", num_labels=1 if classes == 2 else classes),
        "AnyLoss-F1": lambda: AnyLoss(metric="f_beta"),
        "LDR-KL": lambda: LDRKLLoss(lam=10.0, margin=0.1),  # the official experiments' lambda, margin
        "ALDR-KL": lambda: ALDRKLLoss(rows, lam0=10.0, alpha=2.0, margin=0.1),
        "comp-sum GCE": lambda: CompSumLoss(tau=1.7),
        "Z-loss": lambda: ZLoss(a=1.0, b=6.0),
        "CE + log-Z penalty": lambda: PenalisedLoss(FocalLoss(gamma=0.0), LogitZLoss(coefficient=1e-4)),
    }
    if method not in losses:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return losses[method]()


def _scores(model: Head, x: torch.Tensor, one_score: bool) -> torch.Tensor:
    with torch.no_grad():
        logits = model.eval()(x)["logits"]
    if one_score:
        return torch.cat([torch.zeros_like(logits), logits], dim=1)  # P(positive) = sigmoid(logit)
    return logits


def metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """AUROC, F1 and balanced accuracy (binary: of the positive class; multi-class: macro)."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    probabilities = torch.softmax(logits, dim=1).numpy()
    predicted, truth = logits.argmax(1).numpy(), labels.numpy()
    if logits.shape[1] == 2:
        auroc, f1 = roc_auc_score(truth, probabilities[:, 1]), f1_score(truth, predicted, zero_division=0)
    else:
        auroc = roc_auc_score(truth, probabilities, multi_class="ovr", average="macro")
        f1 = f1_score(truth, predicted, average="macro", zero_division=0)
    balanced = balanced_accuracy_score(truth, predicted)
    return {"AUROC": float(auroc), "F1": float(f1), "balanced accuracy": float(balanced)}


def train_and_evaluate(
    method: str, task: Task, labels: torch.Tensor, setup: ImbalanceSetup, out_dir: Path
) -> dict[str, float]:
    """Train a fresh head with `method` on (task.train_x, labels) and score it on the clean test set."""
    import datasets

    from hf_margin.callbacks import DRWCallback
    from hf_margin.losses import LDAMLoss
    from hf_margin.losses.equity import add_equity_weights
    from hf_margin.trainers import ClassificationLossArguments, ClassificationLossTrainer

    counts = torch.bincount(labels, minlength=task.num_classes).tolist()
    loss = make_loss(method, counts, len(labels), task.num_classes)
    one_score = method in ONE_SCORE and task.num_classes == 2
    torch.manual_seed(setup.seed)
    model = Head(task.head, task.train_x.shape[1], 1 if one_score else task.num_classes)
    rows = datasets.Dataset.from_dict(
        {"features": task.train_x.tolist(), "labels": labels.tolist(), "index": list(range(len(labels)))}
    )
    if method == "generalized focal":
        rows = add_equity_weights(rows, torch.tensor, "features", batch_size=512)  # the paper's t-SNE + DBSCAN
    if one_score:
        rows = rows.cast_column("labels", datasets.Value("float32"))
    epoch_steps = max(1, -(-len(labels) // setup.batch_size))
    learning_rate = setup.learning_rate
    if method == "AUC-M" and setup.auc_m_learning_rate is not None:
        learning_rate = setup.auc_m_learning_rate
    args = ClassificationLossArguments(
        str(out_dir / "runs" / method.replace(" ", "_")),
        max_steps=setup.steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=setup.batch_size,
        seed=setup.seed,
        data_seed=setup.seed,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=max(1, setup.steps // 5),
        weight_decay=0.0,
        use_cpu=True,
    )
    trainer = ClassificationLossTrainer(model, args, loss=loss, train_dataset=rows)
    if isinstance(loss, LDAMLoss):  # DRW: re-weight for the last third of the budget, as the paper's schedule does
        trainer.add_callback(DRWCallback(loss, switch_epoch=max(1, (2 * setup.steps // 3) // epoch_steps)))
    trainer.train()
    return metrics(_scores(model, task.test_x, one_score), task.test_y)


def run(context: DemoContext, setup: ImbalanceSetup = ImbalanceSetup()) -> list[DemoRow]:
    check_choice(setup.task, "task", ("text", "images"))
    unknown = [m for m in setup.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    task = text_task(setup) if setup.task == "text" else _image_task(setup)
    results: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}
    methods = setup.methods
    runs = [(m, 0.0) for m in methods] + [(m, n) for n in setup.noise if n > 0 for m in methods if m in NOISE_ROBUST]
    for method, noise in context.progress(runs, desc=f"imbalance demo ({setup.task})", unit="run", leave=False):
        labels = with_noise(task.train_y, noise, task.num_classes, setup.seed) if noise else task.train_y
        key = f"{method} ({noise:.0%} noise)" if noise else method
        start = time.perf_counter()
        results[key] = train_and_evaluate(method, task, labels, setup, context.out_dir)
        timings[key] = time.perf_counter() - start
    dataset = "Rotten Tomatoes 1:20 (MiniLM features)" if setup.task == "text" else "long-tailed digits (small CNN)"
    report = {
        "setup": asdict(setup),
        "dataset": dataset,
        "train_counts": torch.bincount(task.train_y).tolist(),
        "test_counts": torch.bincount(task.test_y).tolist(),
        "results": results,
        "seconds": timings,
    }
    (context.out_dir / f"imbalance_{setup.task}.json").write_text(json.dumps(report, indent=2))
    if len(results) > 2:
        plot_results(results, dataset, context.out_dir / f"imbalance_{setup.task}.png")
    return rows_from_results(results, timings, dataset)


def rows_from_results(results: dict[str, dict[str, float]], timings: dict[str, float], dataset: str) -> list[DemoRow]:
    """Every method against CE at the same noise level (CE itself is the baseline, not a row)."""
    rows = []
    for key, values in results.items():
        method, _, noise = key.partition(" (")
        baseline = f"{BASELINE} ({noise}" if noise else BASELINE
        if method == BASELINE or baseline not in results:
            continue
        for metric, value in values.items():
            rows.append(
                DemoRow("imbalance", key, baseline, metric, value, results[baseline][metric], timings[key], dataset)
            )
    return rows


def plot_results(results: dict[str, dict[str, float]], dataset: str, path: Path) -> None:
    """Grouped horizontal bars: each run's AUROC, F1 and balanced accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.5))
    for offset, metric in zip((-0.27, 0.0, 0.27), ("AUROC", "F1", "balanced accuracy"), strict=True):
        ax.barh([i + offset for i in range(len(names))], [results[n][metric] for n in names], height=0.27, label=metric)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(dataset)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
