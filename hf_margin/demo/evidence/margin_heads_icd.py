"""Evidence 1: the margin heads where identities are many and samples per identity few (open-set verification).

Setting. ICD-10-CM 3-character categories are the identities and the wording of their codes (descriptions and
inclusion terms of the category and its sub-codes) are the samples: 1,728 categories have at least 4 snippets, and
each keeps at most `max_samples` (4-12 samples per identity). The backbone is all-MiniLM-L6-v2, frozen (its
sentence embeddings are computed once and cached); a two-layer embedding network (384 -> `hidden` -> `embedding_size`,
batch norm) and the head are trained. Per seed, `held_out` categories are set aside for verification and the
training identities are the first N of a seed-shuffled order of the others (nested: the 100 are among the 500), so
the sweep over N is paired within a seed and every head trains on the same data, initialisation and batch order.
Verification scores every pair of the held-out categories' samples (cosine): TAR at FAR 1e-3 and 1e-2. The frozen
MiniLM's own embeddings are verified once per seed (recorded under 0 training identities): the untrained reference.

This is the regime of ArcFace (Deng et al., arXiv:1801.07698), CosFace (Wang et al., arXiv:1801.09414), AdaFace
(Kim et al., arXiv:2204.00964), ElasticFace (Boutros et al., arXiv:2109.09416) and Partial FC (An et al.,
arXiv:2203.15565): the margin's claim is that it separates identities better than softmax when there are many of
them and verification is on unseen ones; Partial FC's claim is that sampling 10% of the class centres costs no
accuracy against the full ArcFace head.

Each finished (head, identities, seed) run is appended at once to ``records.jsonl`` in the output folder (a
restarted run skips the records already there), and the summary with 95% intervals and paired differences is
rewritten after every record (``summary.json``).
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hf_margin._extras import require
from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.demo.data.icd_notes import category_snippets
from hf_margin.demo.data.pretrained import cached_minilm_features
from hf_margin.demo.evidence.records import (
    append_record,
    paired_row,
    plot_paired_differences,
    read_records,
    save_summary,
)
from hf_margin.demo.evidence.records import summarise as summarise_records
from hf_margin.heads import build_head
from hf_margin.metrics import pair_scores, tar_at_far

# display name -> (head type, arguments beyond the paper defaults)
HEADS: dict[str, tuple[str, dict[str, Any]]] = {
    "softmax CE": ("softmax", {}),
    "ArcFace": ("arcface", {}),
    "CosFace": ("cosface", {}),
    "AdaFace": ("adaface", {}),
    "ElasticArcFace+": ("elastic_arcface", {"plus": True}),
    "Partial FC ArcFace (10% of centres)": ("partial_fc", {"margin_head": "arcface", "sample_rate": 0.1}),
}
BASELINE = "softmax CE"
# Partial FC's own claim is against the full ArcFace head, not softmax
BASELINE_OF = {"Partial FC ArcFace (10% of centres)": "ArcFace"}
FARS = (1e-3, 1e-2)
# the untrained reference: MiniLM's own sentence embeddings, recorded once per seed under 0 training identities
FROZEN = "frozen MiniLM (no training)"
ORDER = [*HEADS, FROZEN]
ENTRY = "evidence/margin_heads_icd"


@dataclass(frozen=True)
class ManyIdentitiesSetup:
    """Budget and protocol of evidence experiment 1.

    Args:
        identities: the sweep of training identities (ICD categories); each at most the categories left after
            `held_out`.
        held_out: categories verified (never trained on), drawn per seed.
        seeds: seeds (each: a held-out draw, a training order, an initialisation; shared by every head).
        min_samples: a category needs this many snippets to be an identity.
        max_samples: snippets kept per identity (few samples per identity).
        epochs: training epochs per run (every head the same).
        learning_rate: AdamW learning rate.
        batch_size: training batch size.
        hidden: width of the embedding network's hidden layer.
        embedding_size: width of the embedding.
        heads: names of `HEADS` to train (softmax CE, the baseline, is always trained).
    """

    identities: tuple[int, ...] = (100, 500, 1500)
    held_out: int = 200
    seeds: int = 5
    min_samples: int = 4
    max_samples: int = 12
    epochs: int = 30
    learning_rate: float = 1e-3
    batch_size: int = 128
    hidden: int = 512
    embedding_size: int = 256
    heads: tuple[str, ...] = tuple(HEADS)


@dataclass(frozen=True)
class IdentityTexts:
    """The samples (texts) and their identity (category index) with the category codes."""

    texts: list[str]
    labels: np.ndarray
    categories: list[str]


def icd_identities(min_samples: int, max_samples: int) -> IdentityTexts:
    """ICD-10-CM categories with at least `min_samples` snippets, each with at most `max_samples` of them (a fixed
    draw, the same for every seed, so the encoded features are computed once)."""
    if not 2 <= min_samples <= max_samples:
        raise ValueError(f"need 2 <= `min_samples` <= `max_samples`, got {min_samples} and {max_samples}")
    cm = require("simple_icd_10_cm", "data", "the ICD-10-CM identities")
    snippets = category_snippets(cm)
    rng = random.Random(0)
    texts: list[str] = []
    labels: list[int] = []
    categories: list[str] = []
    for category in sorted(snippets):
        kept = snippets[category][:]
        if len(kept) < min_samples:
            continue
        rng.shuffle(kept)
        texts += kept[:max_samples]
        labels += [len(categories)] * min(len(kept), max_samples)
        categories.append(category)
    return IdentityTexts(texts, np.asarray(labels), categories)


class EmbeddingNet(nn.Module):
    """The trained part on top of the frozen MiniLM: linear, batch norm, ReLU, dropout, linear, batch norm."""

    def __init__(self, in_features: int, hidden: int, embedding_size: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(hidden, embedding_size),
            nn.BatchNorm1d(embedding_size),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def split_for_seed(num_categories: int, held_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out categories, the other categories in a seed-shuffled order: the first N train at N identities)."""
    order = np.random.default_rng(seed).permutation(num_categories)
    return np.sort(order[:held_out]), order[held_out:]


def _make_head(head_type: str, embedding_size: int, num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    if head_type == "partial_fc":
        from hf_margin.heads import PartialFCHead

        return PartialFCHead(embedding_size=embedding_size, num_classes=num_classes, **kwargs)
    return build_head(head_type, embedding_size, num_classes, **kwargs)


def train_and_verify(
    features: Tensor,
    labels: Tensor,
    train_categories: np.ndarray,
    test_mask: Tensor,
    head_name: str,
    seed: int,
    setup: ManyIdentitiesSetup,
) -> dict[str, float]:
    """Train the embedding network with `head_name` on `train_categories`; TAR at every FAR of `FARS` on the
    held-out samples (`test_mask`), and the training seconds."""
    relabel = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
    relabel[torch.as_tensor(train_categories)] = torch.arange(len(train_categories))
    in_train = relabel[labels] >= 0
    x, y = features[in_train], relabel[labels[in_train]]
    torch.manual_seed(seed)
    net = EmbeddingNet(features.shape[1], setup.hidden, setup.embedding_size)
    head_type, kwargs = HEADS[head_name]
    head = _make_head(head_type, setup.embedding_size, len(train_categories), kwargs)
    optimizer = torch.optim.AdamW([*net.parameters(), *head.parameters()], lr=setup.learning_rate, weight_decay=5e-4)
    start = time.perf_counter()
    net.train()
    head.train()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(setup.epochs):
        for batch in torch.randperm(len(x), generator=generator).split(setup.batch_size):
            if len(batch) < 2:  # batch norm needs two samples
                continue
            loss = head(net(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        return verify(net(features[test_mask]), labels[test_mask]) | {"seconds": seconds}


def verify(embeddings: Tensor, labels: Tensor) -> dict[str, float]:
    """TAR at every FAR of `FARS` over all pairs of `embeddings` (cosine), genuine when their labels agree."""
    scores, same = pair_scores(embeddings, labels)
    return {f"tar@far={far:g}": tar_at_far(scores, same, far) for far in FARS}


def _baseline_of(head: str) -> str | None:
    return None if head == FROZEN else BASELINE_OF.get(head, BASELINE)


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (identities, head): TAR at each FAR with its 95% interval over seeds and the paired difference to the
    head's baseline (`hf_margin.demo.evidence.records.summarise`)."""
    metrics = [f"tar@far={far:g}" for far in FARS]
    return summarise_records(
        records, setting="identities", method="head", metrics=metrics, baseline_of=_baseline_of, order=ORDER
    )


def _feature_cache(texts: list[str], out_dir: Path) -> Path:
    digest = hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:12]
    return out_dir / f"minilm_features_{digest}.npy"


def run(context: DemoContext, setup: ManyIdentitiesSetup | None = None) -> list[DemoRow]:
    """Run every missing (identities, seed, head) record, appending each to records.jsonl; return the table rows."""
    setup = setup or ManyIdentitiesSetup()
    unknown = [name for name in setup.heads if name not in HEADS]
    if unknown:
        raise ValueError(f"unknown `heads` {unknown}; known: {', '.join(HEADS)}")
    baselines = {BASELINE, *(BASELINE_OF[h] for h in setup.heads if h in BASELINE_OF)}
    heads = [name for name in HEADS if name in setup.heads or name in baselines]
    if setup.seeds < 1:
        raise ValueError(f"`seeds` must be >= 1, got {setup.seeds}")
    data = icd_identities(setup.min_samples, setup.max_samples)
    pool = len(data.categories) - setup.held_out
    too_many = [n for n in setup.identities if not 1 < n <= pool]
    if setup.held_out < 2 or too_many:
        raise ValueError(
            f"`identities` must each be in [2, {pool}] ({len(data.categories)} categories minus `held_out` "
            f"{setup.held_out}, which must be >= 2), got {list(setup.identities)}"
        )
    features = torch.from_numpy(
        np.asarray(cached_minilm_features(data.texts, _feature_cache(data.texts, context.out_dir)))
    )
    labels = torch.from_numpy(data.labels)
    records_path = context.out_dir / "records.jsonl"
    done = {(r["identities"], r["head"], r["seed"]) for r in read_records(records_path)}
    planned = [
        run
        for seed in range(setup.seeds)
        for run in [(seed, 0, FROZEN), *((seed, n, h) for n in setup.identities for h in heads)]
    ]
    runs = [(s, n, h) for s, n, h in planned if (n, h, s) not in done]
    bar = context.progress(total=len(runs), desc="evidence: margin heads", unit="run")
    for seed, identities, head in runs:
        held_out, order = split_for_seed(len(data.categories), setup.held_out, seed)
        test_mask = torch.from_numpy(np.isin(data.labels, held_out))
        with single_thread():
            if head == FROZEN:
                result = verify(features[test_mask], labels[test_mask]) | {"seconds": 0.0}
            else:
                result = train_and_verify(features, labels, order[:identities], test_mask, head, seed, setup)
        record = {"identities": identities, "head": head, "seed": seed, **result}
        append_record(records_path, record)
        summary = {"setup": asdict(setup), "categories": len(data.categories), "samples": len(data.texts)}
        summary["results"] = summarise(read_records(records_path))
        save_summary(context.out_dir, summary)
        bar.update()
    bar.close()
    records = read_records(records_path)
    plot_paired_differences(
        summarise(records),
        [f"tar@far={far:g}" for far in FARS],
        context.out_dir / "paired_differences.png",
        xlabel="training identities",
        title=f"Margin heads on ICD-10-CM identities: paired difference to the baseline ({setup.seeds} seeds, 95% CI)",
    )
    return rows_from_records(records)


def rows_from_records(records: list[dict[str, Any]]) -> list[DemoRow]:
    """One row per (identities, head, FAR) against the head's baseline: means over the seeds both have; the note
    gives the paired difference with its 95% interval and the seed count."""
    by_key = {(r["identities"], r["head"], r["seed"]): r for r in records}
    rows = []
    for identities, head in sorted({k[:2] for k in by_key}, key=lambda k: (k[0], ORDER.index(k[1]))):
        baseline = BASELINE_OF.get(head, BASELINE)
        if head == baseline:
            continue
        for far in FARS:
            row = paired_row(
                by_key,
                (identities, head),
                (identities, baseline),
                f"tar@far={far:g}",
                entry=ENTRY,
                names=(head, baseline, f"TAR@FAR={far:g}"),
                dataset=f"ICD-10-CM, {identities} training identities",
            )
            rows += [row] if row else []
    return rows
