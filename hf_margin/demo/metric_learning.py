"""Demo entry: open-set retrieval with Multi-Similarity (+ miner) and MS + TCM against PML's losses.

Real data: the ORL faces (or, when absent, sklearn's digits with each digit an identity) through the frozen
ImageNet EfficientNet-lite0 (pooled 1,280-d features, computed once). A linear projection to 64-d is trained on
the first identities and evaluated on the held-out rest (never seen in training): Recall@1 and MAP@R
(leave-one-out cosine retrieval) and OPIS (lower is more threshold-consistent). Every loss gets the same
features, initialisation, optimiser and steps. Methods: ours MS + miner against PML's TripletMarginLoss (margin
0.1, all triplets), ours MS + miner against PML's MS + miner (the two should coincide), ours MS + TCM.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo.data.faces import (
    IdentityImages,
    cap_per_identity,
    load_identities,
)
from hf_margin.demo.data.pretrained import efficientnet_lite0, grey_to_efficientnet_input
from hf_margin.functional.contrastive import similarity_matrix
from hf_margin.losses.multi_similarity import MultiSimilarityLoss, MultiSimilarityMiner
from hf_margin.losses.tcm import ThresholdConsistentMarginLoss
from hf_margin.metrics.opis import opis
from hf_margin.metrics.retrieval import retrieval_metrics

ENTRY = "metric_learning"
Objective = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class MetricLearningSetup:
    """Budget of the comparison: held-out identity fraction, images per identity, steps, projection size."""

    held_out_fraction: float = 0.25
    max_images_per_identity: int = 40
    steps: int = 80
    learning_rate: float = 1e-3
    embedding_size: int = 64
    image_size: int = 96


def _objectives() -> dict[str, Objective]:
    from pytorch_metric_learning import losses, miners

    ms, miner = MultiSimilarityLoss(), MultiSimilarityMiner()
    tcm = ThresholdConsistentMarginLoss(base_loss=ms)
    pml_ms, pml_miner = losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner()
    triplet = losses.TripletMarginLoss(margin=0.1)
    return {
        "MS + miner": lambda x, y: ms(x, y, miner(x, y)),
        "MS + miner + TCM": lambda x, y: tcm(x, y, miner(x, y)),
        "PML MS + miner": lambda x, y: pml_ms(x, y, pml_miner(x, y)),
        "PML TripletMarginLoss": lambda x, y: triplet(x, y),
    }


def load_features(data: IdentityImages, image_size: int) -> Tensor:
    """Pooled features of the frozen EfficientNet-lite0 for every image (N, 1280)."""
    with contextlib.redirect_stdout(io.StringIO()):  # the weights package prints a line on load
        backbone = efficientnet_lite0()
    images = grey_to_efficientnet_input(torch.from_numpy(data.images), (image_size, image_size))
    with torch.no_grad():
        return torch.cat([backbone.extract_features(batch).mean((2, 3)) for batch in images.split(100)])


def train_and_evaluate(
    features: Tensor, labels: Tensor, held_out: Tensor, objective: Objective, setup: MetricLearningSetup
) -> dict[str, float]:
    """Train a linear projection with `objective` on the training identities; metrics on the held-out ones."""
    torch.manual_seed(0)
    projection = nn.Linear(features.shape[1], setup.embedding_size)
    optimiser = torch.optim.Adam(projection.parameters(), lr=setup.learning_rate)
    x_train, y_train = features[~held_out], labels[~held_out]
    for _ in range(setup.steps):
        optimiser.zero_grad()
        objective(projection(x_train), y_train).backward()
        optimiser.step()
    with torch.no_grad():
        test = projection(features[held_out])
    scores = retrieval_metrics(test, labels[held_out])
    scores["OPIS"] = opis(similarity_matrix(test.double(), test.double()), labels[held_out])
    return scores


def run(context: DemoContext, setup: MetricLearningSetup | None = None) -> list[DemoRow]:
    setup = setup or MetricLearningSetup()
    data = load_identities(context.data_dir)
    data = cap_per_identity(data, setup.max_images_per_identity)
    labels = torch.from_numpy(data.labels)
    features = load_features(data, setup.image_size)
    held_out = labels >= round(data.num_identities * (1 - setup.held_out_fraction))
    results, seconds = {}, {}
    for name, objective in _objectives().items():
        start = time.perf_counter()
        results[name] = train_and_evaluate(features, labels, held_out, objective, setup)
        seconds[name] = time.perf_counter() - start
    rows = []
    for method, baseline in (
        ("MS + miner", "PML TripletMarginLoss"),
        ("MS + miner", "PML MS + miner"),
        ("MS + miner + TCM", "PML TripletMarginLoss"),
    ):
        for metric in ("R@1", "MAP@R", "OPIS"):
            shown = metric if metric != "OPIS" else "OPIS (lower is better)"
            ours, theirs = results[method][metric], results[baseline][metric]
            rows.append(DemoRow(ENTRY, method, baseline, shown, ours, theirs, seconds[method], data.name))
    return rows


def main() -> None:
    """Print the comparison table (``python -m hf_margin.demo.metric_learning``; ORL faces via $HF_MARGIN_DATA)."""
    from pathlib import Path

    from hf_margin.demo import format_table

    print(format_table(run(DemoContext(out_dir=Path("."), data_dir=None))))


if __name__ == "__main__":
    main()
