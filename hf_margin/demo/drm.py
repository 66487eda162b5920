"""Demo entry: DRM (`DomainSpecificHeads`, arXiv 2208.08661) against a single head (ERM), leave-one-domain-out.

Data: ICD-10-CM (simple-icd-10-cm) leaf codes whose description names exactly one side; the task is laterality
(left vs right), the domains are ICD-10-CM chapters (injury 19, musculoskeletal 13, eye 7, circulatory 9, ear 8).
Features: frozen all-MiniLM-L6-v2 (cached). Each held-out chapter is the test domain; DRM (shared 64-unit layer,
a head per training chapter plus a shared head, entropy head selection) and ERM (the same layer, one head) train
from the same initialisation for the same steps. Metric: accuracy on the held-out chapter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.demo.petal import cache_dir
from hf_margin.models.drm import DomainSpecificHeads

CHAPTERS = ("19", "13", "7", "9", "8")


@dataclass(frozen=True)
class DRMSetup:
    """Budget: `per_class` descriptions per side and chapter, `steps` full-batch Adam steps, the chapters used."""

    per_class: int = 60
    steps: int = 150
    learning_rate: float = 1e-2
    chapters: tuple[str, ...] = CHAPTERS
    seed: int = 0


def _load(setup: DRMSetup) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import simple_icd_10_cm as cm

    rng = np.random.default_rng(setup.seed)
    texts, labels, domains = [], [], []
    for code in cm.get_all_codes(False):
        if not cm.is_leaf(code):
            continue
        words = cm.get_description(code).lower().replace(",", " ").split()
        chapter = cm.get_ancestors(code)[-1]
        if chapter in setup.chapters and ("left" in words) != ("right" in words):
            texts.append(cm.get_description(code))
            labels.append(int("left" in words))
            domains.append(setup.chapters.index(chapter))
    y, d = np.array(labels), np.array(domains)
    keep = np.concatenate(
        [
            rng.permutation(np.flatnonzero((y == c) & (d == k)))[: setup.per_class]
            for k in range(len(setup.chapters))
            for c in (0, 1)
        ]
    )
    path = cache_dir() / f"drm_icd_minilm_{setup.per_class}_{'-'.join(setup.chapters)}_{setup.seed}.npy"
    if path.is_file():
        features = np.load(path)
    else:
        from sentence_transformers import SentenceTransformer

        from hf_margin.demo.data.pretrained import minilm_path

        encoder = SentenceTransformer(minilm_path(), device="cpu")
        features = encoder.encode([texts[i] for i in keep], batch_size=128, show_progress_bar=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, features)
    return torch.from_numpy(features).float(), torch.as_tensor(y[keep]), torch.as_tensor(d[keep])


def _train(model: DomainSpecificHeads, x: torch.Tensor, y: torch.Tensor, d: torch.Tensor, setup: DRMSetup) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.learning_rate)
    for _ in range(setup.steps):
        optimizer.zero_grad()
        model(x, labels=y, domains=d)["loss"].backward()
        optimizer.step()


def run(context: DemoContext, setup: DRMSetup = DRMSetup()) -> list[DemoRow]:
    x, y, d = _load(setup)
    rows = []
    with single_thread():
        for held_out, chapter in enumerate(setup.chapters):
            start = time.perf_counter()
            train, test = d != held_out, d == held_out
            domains = d[train] - (d[train] > held_out).long()  # renumber the training chapters 0..K-1
            accuracy = {}
            for name, k in (("DRM", len(setup.chapters) - 1), ("ERM", 1)):
                torch.manual_seed(setup.seed)
                model = DomainSpecificHeads(nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU()), 64, 2, k)
                _train(model, x[train], y[train], domains if k > 1 else torch.zeros_like(domains), setup)
                with torch.no_grad():
                    predicted = model(x[test])["logits"].argmax(1)
                accuracy[name] = float((predicted == y[test]).float().mean())
            rows.append(
                DemoRow(
                    "drm",
                    f"DRM (held out chapter {chapter})",
                    "ERM",
                    "accuracy",
                    accuracy["DRM"],
                    accuracy["ERM"],
                    time.perf_counter() - start,
                    "ICD-10-CM laterality by chapter (MiniLM features)",
                )
            )
    return rows
