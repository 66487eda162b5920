"""Demo entry: the contrastive temperature (Wang & Liu, arXiv 2012.09740) and UNPG (arXiv 2203.11593) on digits.

scikit-learn's 8x8 digits (1,797 images, 10 classes) split 70/30 per class. A small MLP projection (64 -> 128 ->
32) is trained from the same initialisation, on the same batches, for the same steps with:

- temperature InfoNCE over the batch's label pairs (`TemperatureInfoNCELoss`) at tau = 0.07 and tau = 0.2: the
  paper's claim is that the smaller tau gives more uniform but less tolerant embeddings (lower uniformity, lower
  same-class similarity);
- an ArcFace head (m = 0.5; s = 16 rather than the paper's 64, for 32-d embeddings and 10 classes) alone and with
  UNPG (whisker 1.5).

Metrics on the test images: recall@1 of cosine nearest-neighbour retrieval (leave-one-out), uniformity (reported
negated so that higher = more uniform) and tolerance.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.heads import ArcFaceHead
from hf_margin.losses.temperature_info_nce import TemperatureInfoNCELoss
from hf_margin.losses.unpg import UNPGLoss
from hf_margin.metrics.embedding_geometry import tolerance, uniformity

DATASET = "sklearn digits (70/30 split per class), MLP projection"


@dataclass(frozen=True)
class ContrastiveSetup:
    """Budget of the comparison.

    Args:
        steps: optimizer steps per method.
        batch_size: images per step.
        learning_rate: Adam learning rate.
        scale: ArcFace's logit scale for the 32-d embeddings.
        seed: seed of the split, the initialisation and the batches.
    """

    steps: int = 200
    batch_size: int = 128
    learning_rate: float = 3e-3
    scale: float = 16.0
    seed: int = 0


def load_split(seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Digits scaled to [0, 1]: (train_x, train_y, test_x, test_y), 30% of each class held out."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = torch.tensor(digits.data / 16.0, dtype=torch.float32), torch.as_tensor(digits.target)
    g = torch.Generator().manual_seed(seed)
    test = torch.zeros(len(y), dtype=torch.bool)
    for label in range(10):
        rows = torch.nonzero(y == label).squeeze(1)
        test[rows[torch.randperm(len(rows), generator=g)[: int(0.3 * len(rows))]]] = True
    return x[~test], y[~test], x[test], y[test]


def projection(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))


def recall_at_1(embeddings: Tensor, labels: Tensor) -> float:
    """Share of rows whose cosine nearest neighbour (itself excluded) has the same label."""
    x = nn.functional.normalize(embeddings, dim=1)
    sim = (x @ x.T).fill_diagonal_(-2.0)
    return float((labels[sim.argmax(1)] == labels).float().mean())


def train(method: str, data: tuple[Tensor, Tensor, Tensor, Tensor], setup: ContrastiveSetup) -> dict[str, float]:
    """Train one projection with `method` and return its test metrics."""
    train_x, train_y, test_x, test_y = data
    model = projection(setup.seed)
    loss_fn: nn.Module
    if method.startswith("InfoNCE"):
        loss_fn = TemperatureInfoNCELoss(temperature=float(method.split("=")[1]))
    else:
        torch.manual_seed(setup.seed)
        head = ArcFaceHead(32, 10, margin=0.5, scale=setup.scale)
        loss_fn = UNPGLoss(head) if method.startswith("UNPG") else head
    optimizer = torch.optim.Adam([*model.parameters(), *loss_fn.parameters()], lr=setup.learning_rate)
    g = torch.Generator().manual_seed(setup.seed)
    for _ in range(setup.steps):
        rows = torch.randperm(len(train_y), generator=g)[: setup.batch_size]
        loss = loss_fn(model(train_x[rows]), train_y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        embeddings = model.eval()(test_x)
    return {
        "recall@1": recall_at_1(embeddings, test_y),
        "-uniformity": -float(uniformity(embeddings)),
        "tolerance": float(tolerance(embeddings, test_y)),
    }


# (method, baseline) pairs reported as rows
COMPARISONS = (("InfoNCE tau=0.07", "InfoNCE tau=0.2"), ("UNPG + ArcFace", "ArcFace"))


def run(context: DemoContext, setup: ContrastiveSetup = ContrastiveSetup()) -> list[DemoRow]:
    data = load_split(setup.seed)
    methods = [name for pair in COMPARISONS for name in pair]
    results: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for method in context.progress(methods, desc="contrastive demo", unit="method", leave=False):
        start = time.perf_counter()
        results[method] = train(method, data, setup)
        seconds[method] = time.perf_counter() - start
    report = {"setup": asdict(setup), "dataset": DATASET, "results": results, "seconds": seconds}
    (context.out_dir / "contrastive.json").write_text(json.dumps(report, indent=2))
    return [
        DemoRow("contrastive", method, baseline, metric, value, results[baseline][metric], seconds[method], DATASET)
        for method, baseline in COMPARISONS
        for metric, value in results[method].items()
    ]
