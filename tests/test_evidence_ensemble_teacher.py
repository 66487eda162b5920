"""Evidence 5's ensemble teacher: the standardised mean of a cross-encoder's and a bi-encoder's scores on the
cross-encoder's scale, its re-ranking, and the training rows' scores it replaces."""

from __future__ import annotations

from types import SimpleNamespace

import datasets
import pytest
import torch
from transformers import BertForSequenceClassification

from hf_margin.data.teacher_scoring import cross_encoder_scores
from hf_margin.demo.evidence import ensemble_teacher
from hf_margin.demo.evidence.ensemble_teacher import (
    bi_encoder_scores,
    cross_scores,
    ensemble_rerank,
    ensemble_scores,
    standardised,
    with_ensemble_scores,
)
from hf_margin.trainers.margin_mse_trainer import RerankingSet
from tests.trainers.test_margin_mse_trainer import bert_config
from tests.trainers.tiny_lm import WORDS, tiny_tokenizer


class FixedEncoder:
    """A bi-encoder stand-in: each text's embedding is a fixed unit vector."""

    def __init__(self, texts: list[str], seed: int = 0) -> None:
        vectors = torch.nn.functional.normalize(
            torch.randn(len(texts), 8, generator=torch.Generator().manual_seed(seed))
        )
        self.table = dict(zip(texts, vectors, strict=True))

    def encode(self, texts: list[str], **options: object) -> torch.Tensor:
        assert options["normalize_embeddings"] and options["convert_to_tensor"]
        return torch.stack([self.table[t] for t in texts])


def test_identical_members_give_the_cross_encoders_scores() -> None:
    cross = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)) * 5 + 3
    torch.testing.assert_close(ensemble_scores(cross, cross.clone()), cross)


def test_the_ensemble_ranks_by_each_members_score_over_its_spread_on_the_cross_encoders_scale() -> None:
    g = torch.Generator().manual_seed(1)
    cross, bi = torch.randn(50, 5, generator=g) * 8 + 2, torch.rand(50, 5, generator=g)
    ensemble = ensemble_scores(cross, bi)
    expected = cross / cross.std() + bi / bi.std()
    assert torch.equal(ensemble.argsort(dim=1), expected.argsort(dim=1))
    assert ensemble.mean().item() == pytest.approx(cross.mean().item(), abs=1e-5)
    assert ensemble.std().item() == pytest.approx(cross.std().item(), rel=1e-5), "the margins keep their spread"


def test_constant_scores_standardise_to_zero_and_stay_finite() -> None:
    assert torch.equal(standardised(torch.full((3, 4), 7.0)), torch.zeros(3, 4))
    assert torch.isfinite(ensemble_scores(torch.randn(3, 4), torch.ones(3, 4))).all()


def test_members_scoring_other_pairs_are_an_error_naming_them() -> None:
    with pytest.raises(ValueError, match=r"`cross` and `bi` must score the same pairs, got shapes \(2, 3\) and"):
        ensemble_scores(torch.zeros(2, 3), torch.zeros(3, 2))


def test_bi_encoder_scores_are_the_cosines_of_each_query_with_its_passages() -> None:
    queries, passages = ["q0", "q1"], [["a", "b", "c"], ["c", "d", "a"]]
    encoder = FixedEncoder(["q0", "q1", "a", "b", "c", "d"])
    pairs = zip(queries, passages, strict=True)
    expected = torch.tensor([[encoder.table[q] @ encoder.table[p] for p in row] for q, row in pairs])
    torch.testing.assert_close(bi_encoder_scores(encoder, queries, passages), expected)


def _tiny_cross_encoder() -> SimpleNamespace:
    torch.manual_seed(0)
    return SimpleNamespace(model=BertForSequenceClassification(bert_config()), tokenizer=tiny_tokenizer())


def test_cross_scores_in_chunks_equal_one_call() -> None:
    teacher = _tiny_cross_encoder()
    queries = [f"{WORDS[i % len(WORDS)]} {WORDS[(3 * i) % len(WORDS)]}" for i in range(40)]
    passages = [[WORDS[(i + j) % len(WORDS)] for j in range(3)] for i in range(40)]
    whole = cross_encoder_scores([(teacher.model.eval(), teacher.tokenizer)], queries, passages, 16)
    torch.testing.assert_close(cross_scores(teacher, queries, passages, 16), whole)


@pytest.mark.parametrize(
    ("cross", "bi", "mrr"),
    [
        ([1.0, 0.9, -5.0], [0.0, 0.9, 1.0], 1.0),  # each member alone puts the relevant b second; together first
        ([1.0, 0.9, -5.0], [0.5, 0.5, 0.5], 0.5),  # the cross-encoder alone
        ([2.0, 2.0, 2.0], [0.0, 0.9, 1.0], 0.5),  # the bi-encoder alone
    ],
)
def test_the_ensemble_reranks_with_both_members(
    monkeypatch: pytest.MonkeyPatch, cross: list[float], bi: list[float], mrr: float
) -> None:
    monkeypatch.setattr(ensemble_teacher, "cross_scores", lambda teacher, q, p, length: torch.tensor([cross]))
    monkeypatch.setattr(ensemble_teacher, "bi_encoder_scores", lambda encoder, q, p: torch.tensor([bi]))
    data = RerankingSet(["q"], [["a", "b", "c"]], [{1}])
    assert ensemble_rerank(None, None, data, 16)["rerank MRR@10"] == pytest.approx(mrr)


def test_training_rows_get_the_ensembles_scores_and_keep_their_texts() -> None:
    rows = datasets.Dataset.from_dict(
        {
            "anchor": ["q0", "q1"],
            "positive": ["a", "c"],
            "negative_1": ["b", "d"],
            "teacher_scores": [[4.0, 1.0], [2.0, -3.0]],
        }
    )
    encoder = FixedEncoder(["q0", "q1", "a", "b", "c", "d"], seed=2)
    out = with_ensemble_scores(rows, encoder)
    bi = bi_encoder_scores(encoder, ["q0", "q1"], [["a", "b"], ["c", "d"]])
    expected = ensemble_scores(torch.tensor(rows["teacher_scores"]), bi)
    torch.testing.assert_close(torch.tensor(out["teacher_scores"]), expected)
    assert out["anchor"] == rows["anchor"] and out["negative_1"] == rows["negative_1"]
