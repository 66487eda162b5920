"""Real retrieval data: the ICD-10-CM split by code, chatterbot pairs, and the metrics against the anchor's."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("simple_icd_10_cm")
pytest.importorskip("sentence_transformers")

from hf_margin.demo.data.retrieval import (
    RetrievalSet,
    chatterbot_retrieval,
    icd10_retrieval,
    meaning_key,
    retrieval_metrics,
)
from tests.embeddings.tiny_st import WORDS, tiny_sentence_transformer


def test_icd_split_never_trains_on_a_held_out_term() -> None:
    data = icd10_retrieval(test_fraction=0.2, seed=0)
    train_terms = {term for term, _ in data.train_pairs}
    assert not train_terms & set(data.test.queries)
    assert 9000 < len(data.train_pairs) < 11000 and 2000 < len(data.test.queries) < 3000
    assert all(relevant <= set(data.test.corpus) for relevant in data.test.relevant)
    assert set(data.train_corpus) < set(data.test.corpus)
    assert icd10_retrieval(seed=0).test.queries == data.test.queries, "the split is deterministic"


def test_meaning_key_joins_icd_qualifiers() -> None:
    assert meaning_key("Acidosis, unspecified") == meaning_key("Other acidosis") == "acidosis"
    assert meaning_key("Other specified disorders of bone, NOS") == "disorders of bone"
    assert meaning_key("Acidosis") != meaning_key("Alkalosis")


def test_near_duplicates_join_the_training_corpus_only() -> None:
    plain, kept = icd10_retrieval(seed=0), icd10_retrieval(seed=0, near_duplicates=True)
    assert plain.train_pairs == kept.train_pairs and plain.test == kept.test, "only the training corpus changes"
    added = set(kept.train_corpus) - set(plain.train_corpus)
    assert len(added) > 500 and set(plain.train_corpus) < set(kept.train_corpus)
    assert not added & set(plain.test.corpus), "no code with inclusion terms (so none held out) is added"
    keys = {meaning_key(text) for text in plain.train_corpus}
    assert all(meaning_key(text) in keys for text in added)


def test_chatterbot_pairs() -> None:
    data = chatterbot_retrieval()
    assert len(data.corpus) == 871 and sum(len(r) for r in data.relevant) == 871
    assert len(data.queries) == len(set(data.queries))


def test_metrics_match_sentence_transformers_evaluator(tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    model = tiny_sentence_transformer(tmp_path / "tiny")
    words = WORDS[:16]
    corpus = [f"{a} {b}" for a in words[:6] for b in words[6:12]]
    queries = [f"{w} {w}" for w in words[:6]]
    relevant = [{c for c in corpus if c.startswith(q.split()[0])} for q in queries[:3]] + [{corpus[-1]}] * 3
    ours = retrieval_metrics(model, RetrievalSet(queries, relevant, corpus))
    evaluator = InformationRetrievalEvaluator(
        {str(i): q for i, q in enumerate(queries)},
        {str(i): c for i, c in enumerate(corpus)},
        {str(i): {str(corpus.index(c)) for c in r} for i, r in enumerate(relevant)},
        accuracy_at_k=[1, 10],
        precision_recall_at_k=[10],
        ndcg_at_k=[10],
        mrr_at_k=[10],
        map_at_k=[10],
        show_progress_bar=False,
    )
    reference = evaluator(model)
    assert ours["R@1"] == pytest.approx(reference["cosine_accuracy@1"])
    assert ours["R@10"] == pytest.approx(reference["cosine_accuracy@10"])
    assert ours["nDCG@10"] == pytest.approx(reference["cosine_ndcg@10"])
    assert 0 < ours["nDCG@10"] < 1
    assert RetrievalSet(queries, relevant, corpus).sample(2).queries != queries
