"""Multi-label pseudo-notes from ICD-10-CM's clinical wording, labelled with 3-character categories.

Real clinical notes (MIMIC-III, as TransICD uses) are not installable offline. ICD-10-CM (`simple-icd-10-cm`) has
real clinical wording: each category's own and its sub-codes' descriptions and inclusion terms ("snippets").
A pseudo-note joins 1-4 snippets of distinct labelled categories plus 0-2 snippets of unlabelled categories
(other conditions a note mentions). The labelled categories are drawn at random among those with enough
snippets, and a note picks them with probability proportional to their snippet count: ICD's own, strongly
skewed distribution stands in for the code frequencies of clinical data. Each category's snippets are split
into train and test, so test notes use wording never trained on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hf_margin._extras import require
from hf_margin._validation import check_positive_int


@dataclass(frozen=True)
class PseudoNotes:
    """Train and test notes with multi-hot labels over `label_names`.

    Attributes:
        train_texts, test_texts: the notes.
        train_labels, test_labels: one 0/1 list of len(label_names) per note.
        label_names: the 3-character categories.
        label_counts: training notes per label (LDAM's n_j).
    """

    train_texts: list[str]
    train_labels: list[list[int]]
    test_texts: list[str]
    test_labels: list[list[int]]
    label_names: list[str]
    label_counts: list[int]


def category_snippets(cm: Any) -> dict[str, list[str]]:
    """Each ICD-10-CM 3-character category's wording: the descriptions and inclusion terms of the category and its
    sub-codes, de-duplicated in order (`cm` is the `simple_icd_10_cm` module)."""
    snippets = {}
    for category in (c for c in cm.get_all_codes(False) if cm.is_category(c)):
        texts = []
        for code in [category, *cm.get_descendants(category)]:
            texts += [cm.get_description(code), *cm.get_inclusion_term(code)]
        snippets[category] = list(dict.fromkeys(texts))
    return snippets


def icd_pseudo_notes(
    num_labels: int | None = 50,
    train_notes: int = 3000,
    test_notes: int = 800,
    min_snippets: int = 10,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> PseudoNotes:
    """Build the pseudo-note corpus (deterministic for a seed).

    `num_labels` categories are drawn among those with at least `min_snippets` snippets (at least 20 are left
    unlabelled); None labels every such category (1,815 of ICD-10-CM's 1,918 with `min_snippets=2`), and notes then
    have no unlabelled snippets.
    """
    check_positive_int(min_snippets, "min_snippets")
    if min_snippets < 2:
        raise ValueError(f"`min_snippets` must be >= 2 (one snippet for training, one for testing), got {min_snippets}")
    cm = require("simple_icd_10_cm", "data", "the ICD-10-CM pseudo-notes")
    rng = random.Random(seed)
    snippets = category_snippets(cm)
    eligible = sorted(c for c, texts in snippets.items() if len(texts) >= min_snippets)
    if num_labels is None:
        labelled = eligible
    else:
        check_positive_int(num_labels, "num_labels")
        if len(eligible) < num_labels + 20:
            raise ValueError(f"`num_labels` ({num_labels}) is too large: {len(eligible)} categories are eligible")
        labelled = sorted(rng.sample(eligible, num_labels))
    others = [c for c in eligible if c not in set(labelled)]
    splits: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for category in [*labelled, *others]:
        texts = snippets[category][:]
        rng.shuffle(texts)
        cut = max(1, round(test_fraction * len(texts)))
        splits["test"][category], splits["train"][category] = texts[:cut], texts[cut:]
    weights = [len(snippets[c]) for c in labelled]

    def notes(split: str, count: int) -> tuple[list[str], list[list[int]]]:
        texts, labels = [], []
        for _ in range(count):
            chosen: list[str] = []
            size = rng.randint(1, 4)
            while len(chosen) < size:
                pick = rng.choices(labelled, weights)[0]
                if pick not in chosen:
                    chosen.append(pick)
            parts = [rng.choice(splits[split][c]) for c in chosen]
            extra = min(len(others), rng.randint(0, 2))
            parts += [rng.choice(splits[split][c]) for c in rng.sample(others, extra)]
            rng.shuffle(parts)
            texts.append(". ".join(parts) + ".")
            labels.append([int(c in chosen) for c in labelled])
        return texts, labels

    train_texts, train_labels = notes("train", train_notes)
    test_texts, test_labels = notes("test", test_notes)
    counts = [sum(row[j] for row in train_labels) for j in range(len(labelled))]
    return PseudoNotes(train_texts, train_labels, test_texts, test_labels, labelled, counts)
