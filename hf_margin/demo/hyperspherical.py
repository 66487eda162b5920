"""Demo entry: novel people added from k shots by imprinting on a hyperspherical head, against a retrained softmax.

Paper: Pereira, Joly, Valduriez, Porto, "Hyperspherical embedding for novel class classification", arXiv 2102.03243.

Protocol: the ORL faces (not shipped: the AT&T face database, ``att_faces/``, via ``--data-dir DIR`` or
``$HF_MARGIN_DATA``; without them sklearn's digits stand in, each digit a person) through the frozen ImageNet
EfficientNet-lite0 (pooled 1,280-d features, cached as in the few-shot demo), centred on the known people's images
(never a novel one) and L2-normalised. The last `novel_fraction` of the people are novel. Each person's images are
split at random (per seed) into `train_per_class` training images and the rest for testing. For each seed:

- **Hyperspherical + imprinting** (ours): a linear projection and a `HypersphericalHead` (s = `scale`) trained with
  Adam on the known people only, the class vectors projected to unit norm after each step; each novel person is then
  added from k of its training images with `HypersphericalHead.add_classes` (no gradient step). *Joint*: one head
  over all people; *disjoint*: `HypersphericalHead.from_embeddings`, a head of the novel people only.
- **Retrained softmax** (baseline): the same projection with a `SoftmaxHead` (linear + bias) trained from scratch, with
  the same optimiser and steps, on the known people's training images plus the same k shots of each novel person
  (joint), or on the k shots only (disjoint).

Reported: accuracy on the test images of the known and of the novel people (joint: argmax over every person;
disjoint: over the novel people), mean and standard deviation over the seeds.

Example:
    >>> rows = run(DemoContext(out_dir=Path("out"), data_dir=Path("data")))  # ORL under data/att_faces
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from hf_margin._validation import check_in_range, check_positive_int
from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.demo.data.faces import cap_per_identity, load_identities
from hf_margin.demo.few_shot import cached_features, normalise_features
from hf_margin.heads import HypersphericalHead, MarginHead, SoftmaxHead

ENTRY = "hyperspherical"
METHOD, BASELINE = "Hyperspherical + imprinting", "retrained softmax"
METRICS = ("known acc", "novel acc", "disjoint novel acc")
Head = TypeVar("Head", bound=MarginHead)


@dataclass(frozen=True)
class NovelClassSetup:
    """Budget and protocol of the comparison.

    Args:
        novel_fraction: share of the people held out as novel (the last ones).
        shots: the k-shot settings: images of each novel person given to imprinting and to the baseline.
        train_per_class: training images per person (the rest are test images); must be >= max(shots).
        steps: full-batch Adam steps of every training run.
        learning_rate: Adam learning rate.
        embedding_size: output width of the linear projection.
        scale: the hyperspherical head's radius s.
        image_size: the images are resized to a square of this side for the backbone.
        max_images_per_identity: cap, to keep large identity sets (digits) small.
        seeds: repetitions (image split, shots and initialisation seeded 0..seeds-1).
    """

    novel_fraction: float = 0.25
    shots: tuple[int, ...] = (1, 3, 5)
    train_per_class: int = 5
    steps: int = 300
    learning_rate: float = 0.003
    embedding_size: int = 64
    scale: float = 10.0
    image_size: int = 96
    max_images_per_identity: int = 10
    seeds: int = 5


@dataclass(frozen=True)
class Split:
    """One seed's rows: training and test images of the known and of the novel people, and the shots per k."""

    known_train: Tensor
    known_test: Tensor
    novel_test: Tensor
    shots: dict[int, Tensor]


def split_rows(labels: Tensor, novel: Tensor, setup: NovelClassSetup, seed: int) -> Split:
    """Each person's images permuted (seeded): the first `train_per_class` train, the rest test; a novel person's
    k shots are the first k of its training images (so the shots of k = 1 are among those of k = 3)."""
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    shots: dict[int, list[Tensor]] = {k: [] for k in setup.shots}
    for person in labels.unique().tolist():
        rows = torch.nonzero(labels == person).squeeze(1)
        rows = rows[torch.randperm(len(rows), generator=generator)]
        if len(rows) <= setup.train_per_class:
            raise ValueError(f"person {person} has {len(rows)} images: need more than train_per_class")
        if person in novel:
            for k in setup.shots:
                shots[k].append(rows[:k])
        train.append(rows[: setup.train_per_class])
        test.append(rows[setup.train_per_class :])
    is_novel = torch.isin(labels, novel)
    train_rows, test_rows = torch.cat(train), torch.cat(test)
    return Split(
        train_rows[~is_novel[train_rows]],
        test_rows[~is_novel[test_rows]],
        test_rows[is_novel[test_rows]],
        {k: torch.cat(rows) for k, rows in shots.items()},
    )


def train(
    features: Tensor, labels: Tensor, make_head: Callable[[], Head], setup: NovelClassSetup, seed: int
) -> tuple[nn.Linear, Head]:
    """A linear projection and the head `make_head` builds, both initialised from `seed` and trained with full-batch
    Adam; a hyperspherical head is projected to unit norm after each step."""
    torch.manual_seed(seed)
    head = make_head()
    projection = nn.Linear(features.shape[1], setup.embedding_size)
    optimiser = torch.optim.Adam([*projection.parameters(), *head.parameters()], lr=setup.learning_rate)
    for _ in range(setup.steps):
        optimiser.zero_grad()
        head(projection(features), labels).backward()
        optimiser.step()
        if isinstance(head, HypersphericalHead):
            head.project_()
    return projection.eval(), head


def accuracy(projection: nn.Module, head: MarginHead, features: Tensor, labels: Tensor) -> float:
    with torch.no_grad():
        return (head.get_logits(projection(features)).argmax(1) == labels).double().mean().item()


def run_seed(
    features: Tensor, labels: Tensor, known: Tensor, setup: NovelClassSetup, seed: int, seconds: dict[str, float]
) -> dict[str, Any]:
    """Accuracies of both methods for every k of one seed: ``{method: {"k-shot": {metric: value}}}``; each method's
    training and imprinting time is added to ``seconds[method]``."""
    novel = labels.unique()[len(known) :]
    split = split_rows(labels, novel, setup, seed)
    ours: dict[str, dict[str, float]] = {}
    base: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    hyperspherical = partial(HypersphericalHead, setup.embedding_size, len(known), setup.scale)
    projection, head = train(features[split.known_train], labels[split.known_train], hyperspherical, setup, seed)
    x_known, y_known = features[split.known_test], labels[split.known_test]
    x_novel, y_novel = features[split.novel_test], labels[split.novel_test]
    seconds[METHOD] += time.perf_counter() - start
    for k, shot_rows in split.shots.items():
        start = time.perf_counter()
        with torch.no_grad():
            shots = projection(features[shot_rows])
        joint = copy.deepcopy(head)
        joint.add_classes(shots, labels[shot_rows])
        disjoint = HypersphericalHead.from_embeddings(shots, labels[shot_rows] - len(known), setup.scale)
        seconds[METHOD] += time.perf_counter() - start
        ours[f"{k}-shot"] = {
            "known acc": accuracy(projection, joint, x_known, y_known),
            "novel acc": accuracy(projection, joint, x_novel, y_novel),
            "disjoint novel acc": accuracy(projection, disjoint, x_novel, y_novel - len(known)),
        }
        start = time.perf_counter()
        rows = torch.cat([split.known_train, shot_rows])
        all_classes = partial(SoftmaxHead, setup.embedding_size, len(labels.unique()))
        retrained, softmax = train(features[rows], labels[rows], all_classes, setup, seed)
        novel_classes = partial(SoftmaxHead, setup.embedding_size, len(novel))
        novel_shots = labels[shot_rows] - len(known)
        retrained_novel, novel_only = train(features[shot_rows], novel_shots, novel_classes, setup, seed)
        seconds[BASELINE] += time.perf_counter() - start
        base[f"{k}-shot"] = {
            "known acc": accuracy(retrained, softmax, x_known, y_known),
            "novel acc": accuracy(retrained, softmax, x_novel, y_novel),
            "disjoint novel acc": accuracy(retrained_novel, novel_only, x_novel, y_novel - len(known)),
        }
    return {METHOD: ours, BASELINE: base}


def mean_and_std(values: list[float]) -> dict[str, Any]:
    """Mean, standard deviation (n - 1; NaN for one value) and the values."""
    spread = statistics.stdev(values) if len(values) > 1 else float("nan")
    return {"mean": statistics.fmean(values), "std": spread, "values": values}


def summarise(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """`mean_and_std` of every (method, k, metric) over the seeds, and of ours minus the baseline per seed (the
    pair shares the seed's split and shots) under ``"difference"``."""
    summary: dict[str, Any] = {}
    for method in (METHOD, BASELINE, "difference"):
        for setting, metrics in per_seed[0][METHOD].items():
            for metric in metrics:
                values = [_value(seed_result, method, setting, metric) for seed_result in per_seed]
                summary.setdefault(method, {}).setdefault(setting, {})[metric] = mean_and_std(values)
    return summary


def _value(seed_result: dict[str, Any], method: str, setting: str, metric: str) -> float:
    if method == "difference":
        return seed_result[METHOD][setting][metric] - seed_result[BASELINE][setting][metric]
    return seed_result[method][setting][metric]


def compare(features: Tensor, labels: Tensor, setup: NovelClassSetup) -> dict[str, Any]:
    """`summarise` of `run_seed` over the seeds, plus each method's wall time over all seeds and k."""
    check_in_range(setup.novel_fraction, "novel_fraction", 0.0, 1.0)
    check_positive_int(setup.seeds, "seeds")
    if max(setup.shots) > setup.train_per_class:
        raise ValueError(f"`shots` {setup.shots} must not exceed `train_per_class` = {setup.train_per_class}")
    people = labels.unique()
    novel_count = max(1, round(len(people) * setup.novel_fraction))
    known = people[:-novel_count]
    is_known_train = torch.isin(labels, known)  # the centring sees no novel image
    features = normalise_features(features, is_known_train)
    seconds = {METHOD: 0.0, BASELINE: 0.0}
    with single_thread():
        per_seed = [run_seed(features, labels, known, setup, seed, seconds) for seed in range(setup.seeds)]
    return {"summary": summarise(per_seed), "seconds": seconds}


def rows_from_summary(summary: dict[str, Any], seconds: float, dataset: str, seeds: int) -> list[DemoRow]:
    """One row per k and metric: the means over the seeds, the spreads and the paired difference in the note;
    `seconds` is ours (all k)."""
    rows = []
    for setting, metrics in summary[METHOD].items():
        for metric in METRICS:
            ours, base, difference = metrics[metric], summary[BASELINE][setting][metric], summary["difference"]
            paired = difference[setting][metric]
            note = (
                f"std over {seeds} seeds: {ours['std']:.3f} vs {base['std']:.3f}; paired difference "
                f"{paired['mean']:+.3f} +- {paired['std']:.3f}"
            )
            rows.append(
                DemoRow(
                    ENTRY, METHOD, BASELINE, f"{setting} {metric}", ours["mean"], base["mean"], seconds, dataset, note
                )
            )
    return rows


def run(context: DemoContext, setup: NovelClassSetup | None = None) -> list[DemoRow]:
    """The demo entry: the comparison, ``hyperspherical.json`` (means, spreads, per-seed values) and the rows."""
    setup = setup or NovelClassSetup()
    data = cap_per_identity(load_identities(context.data_dir), setup.max_images_per_identity)
    features = cached_features(data, setup.image_size)
    result = compare(features, torch.from_numpy(data.labels), setup)
    report = {"dataset": data.name, "setup": asdict(setup), **result}
    context.out_dir.mkdir(parents=True, exist_ok=True)
    (context.out_dir / f"{ENTRY}.json").write_text(json.dumps(report, indent=2))
    return rows_from_summary(result["summary"], result["seconds"][METHOD], data.name, setup.seeds)


def main() -> None:
    """Print the comparison table (``python -m hf_margin.demo.hyperspherical``; ORL faces via $HF_MARGIN_DATA)."""
    from pathlib import Path

    from hf_margin.demo import format_table

    print(format_table(run(DemoContext(out_dir=Path("."), data_dir=None))))


if __name__ == "__main__":
    main()
