"""Demo entry: M2FNet's adaptive-margin triplet loss against the plain triplet loss, open-set face retrieval.

Real data: the ORL faces (or, when absent, sklearn's digits with each digit an identity) through the frozen
ImageNet EfficientNet-lite0 (pooled 1,280-d features, computed once, as the metric_learning entry). A linear
projection to 64-d is trained on the first 75% of the identities with FaceNet-style batches (P identities x K
images, every triplet of the batch) and evaluated on the held-out rest: Recall@1 and MAP@R of cosine retrieval.
Every objective gets the same initialisation, batches, optimiser and steps per seed. Objectives: the default
(hinged, detached margin, VICReg variance), the paper's printed form (no hinge, gradient through the margin,
unhinged variance), the two forms between them, and PML's TripletMarginLoss (margin 0.1, all triplets), the
plain triplet loss. Mean and sample std over the seeds go to ``m2fnet_triplet.json``, with the untrained
projection's figures for reference.

Example:
    >>> rows = run(DemoContext(out_dir=Path("out"), data_dir=Path("data")))  # ORL under data/att_faces
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.demo.data.faces import cap_per_identity, load_identities
from hf_margin.demo.metric_learning import load_features
from hf_margin.losses.adaptive_margin_triplet import AdaptiveMarginTripletLoss
from hf_margin.metrics.retrieval import retrieval_metrics

ENTRY = "m2fnet_triplet"
OURS = "M2FNet default (hinge, detached margin)"
PRINTED = "M2FNet printed form"
BASELINE = "PML TripletMarginLoss (margin 0.1)"
METRICS = ("R@1", "MAP@R")
Objective = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class M2FNetSetup:
    """Budget: held-out identity fraction, images per identity, batch shape P x K, steps, seeds, sizes."""

    held_out_fraction: float = 0.25
    max_images_per_identity: int = 40
    identities_per_batch: int = 8
    images_per_identity: int = 4
    steps: int = 200
    learning_rate: float = 1e-3
    embedding_size: int = 64
    image_size: int = 96
    seeds: int = 3


def objectives() -> dict[str, Objective]:
    """Every compared objective: M2FNet's four readings and the plain triplet loss."""
    from pytorch_metric_learning import losses

    forms = {
        OURS: AdaptiveMarginTripletLoss(),
        "M2FNet hinge, margin gradient": AdaptiveMarginTripletLoss(detach_margin=False),
        "M2FNet no hinge, detached margin": AdaptiveMarginTripletLoss(hinge=False, variance_hinge=False),
        PRINTED: AdaptiveMarginTripletLoss(hinge=False, detach_margin=False, variance_hinge=False),
    }
    triplet = losses.TripletMarginLoss(margin=0.1)
    return {**{name: loss for name, loss in forms.items()}, BASELINE: lambda x, y: triplet(x, y)}


def sample_batches(labels: Tensor, setup: M2FNetSetup, seed: int) -> list[Tensor]:
    """`setup.steps` batches of row indices: P random identities, K random images of each."""
    generator = torch.Generator().manual_seed(seed)
    identities = labels.unique()
    batches = []
    for _ in range(setup.steps):
        chosen = identities[torch.randperm(len(identities), generator=generator)[: setup.identities_per_batch]]
        rows = []
        for identity in chosen:
            own = torch.nonzero(labels == identity).squeeze(1)
            rows.append(own[torch.randperm(len(own), generator=generator)[: setup.images_per_identity]])
        batches.append(torch.cat(rows))
    return batches


def train_and_evaluate(
    features: Tensor, labels: Tensor, held_out: Tensor, objective: Objective | None, setup: M2FNetSetup, seed: int
) -> dict[str, float]:
    """Train a linear projection with `objective` (None: untrained) on the training identities; retrieval on the
    held-out ones."""
    torch.manual_seed(seed)
    projection = nn.Linear(features.shape[1], setup.embedding_size)
    optimiser = torch.optim.Adam(projection.parameters(), lr=setup.learning_rate)
    x_train, y_train = features[~held_out], labels[~held_out]
    for rows in sample_batches(y_train, setup, seed) if objective is not None else []:
        assert objective is not None  # for mypy: no batches otherwise
        optimiser.zero_grad()
        objective(projection(x_train[rows]), y_train[rows]).backward()
        optimiser.step()
    with torch.no_grad():
        test = projection(features[held_out])
    return retrieval_metrics(test, labels[held_out])


def summarise(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def run(context: DemoContext, setup: M2FNetSetup | None = None) -> list[DemoRow]:
    """The comparison, ``m2fnet_triplet.json`` (per seed, mean and std) and the table rows."""
    setup = setup or M2FNetSetup()
    data = cap_per_identity(load_identities(context.data_dir), setup.max_images_per_identity)
    labels = torch.from_numpy(data.labels)
    features = load_features(data, setup.image_size)
    held_out = labels >= round(data.num_identities * (1 - setup.held_out_fraction))
    per_seed: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = {}
    with single_thread():  # a 1280 x 64 projection: a second thread only contends (7x slower on 2 busy cores)
        for name, objective in objectives().items():
            start = time.perf_counter()
            runs = [
                train_and_evaluate(features, labels, held_out, objective, setup, seed) for seed in range(setup.seeds)
            ]
            seconds[name] = (time.perf_counter() - start) / setup.seeds
            per_seed[name] = {metric: [scores[metric] for scores in runs] for metric in METRICS}
        untrained = [train_and_evaluate(features, labels, held_out, None, setup, seed) for seed in range(setup.seeds)]
    summary = {name: {metric: summarise(values) for metric, values in runs.items()} for name, runs in per_seed.items()}
    summary["untrained projection"] = {metric: summarise([run[metric] for run in untrained]) for metric in METRICS}
    report = {"setup": asdict(setup), "dataset": data.name, "per_seed": per_seed, "summary": summary}
    context.out_dir.mkdir(parents=True, exist_ok=True)
    (context.out_dir / f"{ENTRY}.json").write_text(json.dumps(report, indent=2))
    rows = []
    for method, baseline in ((OURS, BASELINE), (PRINTED, BASELINE), (OURS, PRINTED)):
        for metric in METRICS:
            ours, theirs = summary[method][metric], summary[baseline][metric]
            note = f"std over {setup.seeds} seeds: {ours['std']:.3f} vs {theirs['std']:.3f}"
            rows.append(
                DemoRow(ENTRY, method, baseline, metric, ours["mean"], theirs["mean"], seconds[method], data.name, note)
            )
    return rows


def main() -> None:
    """Print the comparison table (``python -m hf_margin.demo.m2fnet_triplet``; ORL faces via $HF_MARGIN_DATA)."""
    from pathlib import Path

    from hf_margin.demo import format_table

    print(format_table(run(DemoContext(out_dir=Path("."), data_dir=None))))


if __name__ == "__main__":
    main()
