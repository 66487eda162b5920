"""Real retrieval data that installs offline, and the retrieval metrics the embedding demo reports.

- ICD-10-CM (`simple-icd-10-cm`, CMS tabular data): query = an inclusion term, relevant document = the code's
  description ("Reactive arthritis" -> "Reiter's disease"); split by code so that held-out codes are never trained on.
- chatterbot-corpus (English): query = a conversation's first line, relevant = its reply (answers de-duplicated).
"""

from __future__ import annotations

import importlib.util
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_margin._extras import require
from hf_margin.metrics.ranking import ranking_metrics


@dataclass(frozen=True)
class RetrievalSet:
    """Queries with their relevant documents, and the corpus they are retrieved from.

    Attributes:
        queries: query texts (unique).
        relevant: for each query, the set of its relevant documents (texts in `corpus`).
        corpus: the document texts (unique).
    """

    queries: list[str]
    relevant: list[set[str]]
    corpus: list[str]

    def sample(self, n: int, seed: int = 0) -> RetrievalSet:
        """At most `n` queries drawn at random (same corpus)."""
        if n >= len(self.queries):
            return self
        picks = sorted(random.Random(seed).sample(range(len(self.queries)), n))
        return RetrievalSet([self.queries[i] for i in picks], [self.relevant[i] for i in picks], self.corpus)


def _grouped(pairs: list[tuple[str, str]], corpus: list[str]) -> RetrievalSet:
    relevant: dict[str, set[str]] = defaultdict(set)
    for query, document in pairs:
        relevant[query].add(document)
    return RetrievalSet(list(relevant), list(relevant.values()), corpus)


@dataclass(frozen=True)
class ICDRetrieval:
    """ICD-10-CM term -> description retrieval, split by code.

    Attributes:
        train_pairs: (inclusion term, description) pairs of the training codes.
        test: held-out codes' terms as queries against every description.
        train_corpus: descriptions of the training codes (where training negatives come from).
    """

    train_pairs: list[tuple[str, str]]
    test: RetrievalSet
    train_corpus: list[str]


# Words that qualify an ICD-10-CM description without changing what it names (residual and catch-all codes).
QUALIFIERS = frozenset({"unspecified", "other", "specified", "nos", "not", "elsewhere", "classified"})


def meaning_key(text: str) -> str:
    """A description's words without case, punctuation and ICD's qualifiers ("other", "unspecified", "NOS", ...):
    different descriptions with the same key name nearly the same thing ("Acidosis, unspecified" / "Other acidosis")."""
    return " ".join(w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in QUALIFIERS)


def icd10_retrieval(test_fraction: float = 0.2, seed: int = 0, near_duplicates: bool = False) -> ICDRetrieval:
    """Load ICD-10-CM inclusion-term pairs and split them by code (a term of a held-out code is never trained on).

    Args:
        test_fraction: share of the codes with inclusion terms held out.
        seed: seed of the split.
        near_duplicates: add to the training corpus every other ICD-10-CM description with the same `meaning_key`
            as a training description (codes without inclusion terms; never a held-out one), so that mined
            negatives include near-duplicates of the positives: false negatives for a false-negative filter.
    """
    cm = require("simple_icd_10_cm", "data", "the ICD-10-CM retrieval data")
    codes = [c for c in cm.get_all_codes(True) if cm.is_category(c) or cm.is_subcategory(c)]
    pairs = [(term, code) for code in codes for term in cm.get_inclusion_term(code)]
    coded = sorted({code for _, code in pairs})
    held_out = set(random.Random(seed).sample(coded, round(test_fraction * len(coded))))
    description = {code: cm.get_description(code) for code in coded}
    test_terms = {term for term, code in pairs if code in held_out}
    train = [(term, description[code]) for term, code in pairs if code not in held_out and term not in test_terms]
    test = [(term, description[code]) for term, code in pairs if code in held_out]
    corpus = sorted(set(description.values()))
    train_corpus = sorted({description[c] for c in coded if c not in held_out})
    if near_duplicates:
        keys = {meaning_key(text) for text in train_corpus}
        others = {cm.get_description(c) for c in cm.get_all_codes(True)} - set(corpus)
        train_corpus = sorted({*train_corpus, *(text for text in others if meaning_key(text) in keys)})
    return ICDRetrieval(train, _grouped(test, corpus), train_corpus)


def chatterbot_retrieval() -> RetrievalSet:
    """chatterbot-corpus English question -> answer retrieval (871 pairs after de-duplicating answers)."""
    yaml = require("yaml", "data", "the chatterbot-corpus data")
    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("chatterbot-corpus is not installed: `pip install 'hf-margin[data]'`")
    root = Path(spec.submodule_search_locations[0]) / "data" / "english"
    pairs, answers = [], set()
    for path in sorted(root.glob("*.yml")):
        for conversation in yaml.safe_load(path.read_text(encoding="utf-8"))["conversations"]:
            if len(conversation) >= 2 and str(conversation[1]) not in answers:
                answers.add(str(conversation[1]))
                pairs.append((str(conversation[0]), str(conversation[1])))
    return _grouped(pairs, sorted(answers))


def retrieval_metrics(model: Any, data: RetrievalSet, batch_size: int = 128, k: int = 10) -> dict[str, float]:
    """R@1, R@k (a relevant document in the top 1 / top k) and nDCG@k (binary relevance) over the queries.

    Args:
        model: anything with SentenceTransformer's ``encode``; scores are cosine similarities.
        data: the queries, their relevant documents and the corpus.
        batch_size: encoding batch size.
        k: the cut-off of R@k and nDCG@k.
    """
    encode = {"batch_size": batch_size, "convert_to_tensor": True, "normalize_embeddings": True}
    queries = model.encode(data.queries, show_progress_bar=False, **encode)
    corpus = model.encode(data.corpus, show_progress_bar=False, **encode)
    position = {text: i for i, text in enumerate(data.corpus)}
    top = (queries @ corpus.T).topk(min(k, len(data.corpus)), dim=1).indices.cpu().tolist()
    wanted = [{position[text] for text in relevant} for relevant in data.relevant]
    ranked = [[i in hits for i in row] for row, hits in zip(top, wanted, strict=True)]
    metrics = ranking_metrics(ranked, [len(hits) for hits in wanted], k)
    return {name: metrics[name] for name in ("R@1", f"R@{k}", f"nDCG@{k}")}
