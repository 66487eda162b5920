"""Demo entry: self-training with margin thresholds (Self-Training: A Survey, arXiv 2202.12040) against the
labelled-only baseline.

Rotten Tomatoes snippets (fresh / rotten, balanced), split by movie; features from the frozen all-MiniLM-L6-v2
(computed once, cached); a linear head trained with cross-entropy through `ClassificationLossTrainer`. A few labels
per class form the labelled set, the rest of the training movies' snippets the unlabelled set (their true labels
kept only to score the pseudo-labels). `SelfTrainingLoop` trains a fresh head each round (`model_init`, same
seed); round 0 is the labelled-only baseline. Metric: accuracy on the held-out movies.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.demo.imbalance import Head
from hf_margin.demo.petal import cache_dir


@dataclass(frozen=True)
class SelfTrainingSetup:
    """Budget of the comparison.

    Args:
        labels_per_class: labelled snippets per class (the rest of the training movies' snippets are unlabelled).
        rows_per_class: snippets per class drawn from the corpus (train and test together).
        rounds: self-training rounds after the labelled-only round.
        threshold: probability-margin threshold (top-1 minus top-2 probability) for accepting a pseudo-label.
        steps: optimizer steps per round.
        batch_size: rows per step.
        learning_rate: AdamW learning rate.
        seed: seed of the sampling, the labelled draw, the initialisation and the data order.
    """

    labels_per_class: int = 40
    rows_per_class: int = 1000
    rounds: int = 3
    threshold: float = 0.6
    steps: int = 40
    batch_size: int = 32
    learning_rate: float = 0.05
    seed: int = 0


def _features(setup: SelfTrainingSetup) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """MiniLM features, labels and the movie split of a balanced sample of snippets (features cached)."""
    import pandas

    from hf_margin.demo.data.pretrained import cached_minilm_features
    from hf_margin.demo.data.rotten_tomatoes import load_snippets, movie_split

    snippets = load_snippets()
    rows = pandas.concat(
        [snippets[snippets["label"] == c].sample(setup.rows_per_class, random_state=setup.seed) for c in (0, 1)]
    )
    rows = rows.iloc[np.random.default_rng(setup.seed).permutation(len(rows))]
    path = cache_dir() / f"rt_minilm_balanced_{setup.rows_per_class}_{setup.seed}.npy"
    features = cached_minilm_features(rows["text"].tolist(), path)
    split = np.array([movie_split(str(m), {"train": 0.7, "test": 0.3}) for m in rows["movie"]])
    return torch.from_numpy(features).float(), torch.as_tensor(rows["label"].to_numpy().copy()), split


def run(context: DemoContext, setup: SelfTrainingSetup = SelfTrainingSetup()) -> list[DemoRow]:
    import datasets

    from hf_margin.losses import FocalLoss
    from hf_margin.trainers import ClassificationLossArguments, ClassificationLossTrainer
    from hf_margin.trainers.self_training import SelfTrainingConfig, SelfTrainingLoop

    x, y, split = _features(setup)
    train, test = torch.from_numpy(split == "train"), torch.from_numpy(split == "test")
    train_x, train_y, test_x, test_y = x[train], y[train], x[test], y[test]
    g = torch.Generator().manual_seed(setup.seed)
    order = torch.randperm(len(train_y), generator=g)
    chosen = torch.cat([order[train_y[order] == c][: setup.labels_per_class] for c in (0, 1)])
    is_labelled = torch.zeros(len(train_y), dtype=torch.bool)
    is_labelled[chosen] = True
    labelled = datasets.Dataset.from_dict({"features": train_x[chosen].tolist(), "labels": train_y[chosen].tolist()})
    unlabelled = datasets.Dataset.from_dict(
        {"features": train_x[~is_labelled].tolist(), "hidden_label": train_y[~is_labelled].tolist()}
    )

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        with torch.no_grad():
            predicted = model.eval()(test_x)["logits"].argmax(1)
        return {"accuracy": float((predicted == test_y).float().mean())}

    args = ClassificationLossArguments(
        str(context.out_dir / "runs" / "self_training"),
        max_steps=setup.steps,
        learning_rate=setup.learning_rate,
        per_device_train_batch_size=setup.batch_size,
        seed=setup.seed,
        data_seed=setup.seed,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        weight_decay=0.0,
        use_cpu=True,
    )
    config = SelfTrainingConfig(rounds=setup.rounds, threshold=setup.threshold)
    loop = SelfTrainingLoop(
        args,
        labelled,
        unlabelled,
        config,
        model_init=lambda: Head("linear", x.shape[1], 2),
        trainer_cls=ClassificationLossTrainer,
        evaluate=evaluate,
        loss=FocalLoss(gamma=0.0),
    )
    start = time.perf_counter()
    with single_thread():
        history = loop.run().history
    seconds = time.perf_counter() - start
    dataset = f"Rotten Tomatoes, {setup.labels_per_class} labels/class + {len(unlabelled)} unlabelled (MiniLM)"
    report = {
        "setup": asdict(setup),
        "dataset": dataset,
        "test_rows": len(test_y),
        "seconds": seconds,
        "history": [asdict(r) for r in history],
    }
    Path(context.out_dir).mkdir(parents=True, exist_ok=True)
    (context.out_dir / "self_training.json").write_text(json.dumps(report, indent=2))
    final, baseline = history[-1], history[0]
    return [
        DemoRow(
            "self_training",
            f"self-training (margin >= {setup.threshold}, {final.round} rounds)",
            "labelled only",
            "accuracy",
            final.metrics["accuracy"],
            baseline.metrics["accuracy"],
            seconds,
            dataset,
        )
    ]
