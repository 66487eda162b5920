"""Hard-negative mining (KaLM rank window + consistency filter, LG-ANNA 95%-of-positive) and teacher scores."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")

import datasets
import torch

from hf_margin.embeddings import add_teacher_scores, mine_hard_negatives
from hf_margin.functional.contrastive import false_negative_mask
from tests.embeddings.tiny_st import WORDS, tiny_sentence_transformer


def corpus_and_pairs(n_pairs: int = 12, n_corpus: int = 40, seed: int = 0) -> tuple[list[str], datasets.Dataset]:
    g = torch.Generator().manual_seed(seed)
    texts: list[str] = []
    while len(texts) < n_corpus:
        text = " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (3,), generator=g))
        if text not in texts:
            texts.append(text)
    # each anchor shares one word with its positive, so its positive's rank varies from pair to pair
    anchors = [t.split()[0] + " " + WORDS[int(torch.randint(len(WORDS), (1,), generator=g))] for t in texts[:n_pairs]]
    return texts, datasets.Dataset.from_dict({"anchor": anchors, "positive": texts[:n_pairs]})


@pytest.fixture
def model(tmp_path: Path):
    return tiny_sentence_transformer(tmp_path / "tiny")


def ranking(model, anchors: list[str], corpus: list[str]) -> torch.Tensor:
    q = model.encode(anchors, convert_to_tensor=True, normalize_embeddings=True)
    c = model.encode(corpus, convert_to_tensor=True, normalize_embeddings=True)
    return q @ c.T


def test_kalm_samples_from_the_rank_window_and_drops_inconsistent_pairs(model) -> None:
    corpus, pairs = corpus_and_pairs()
    mined = mine_hard_negatives(
        pairs,
        model,
        corpus,
        recipe="kalm",
        num_negatives=3,
        rank_window=(5, 15),
        consistency_top_k=5,
        show_progress_bar=False,
    )
    scores = ranking(model, pairs["anchor"], corpus)
    order = scores.argsort(dim=1, descending=True)
    kept_anchors = set(mined["anchor"])
    for i, anchor in enumerate(pairs["anchor"]):
        positive = corpus.index(pairs["positive"][i])
        rank = int((order[i] == positive).nonzero())
        assert (anchor in kept_anchors) == (rank < 5), f"pair {i}: positive at rank {rank}"
    assert 0 < len(mined) < len(pairs), "the toy ranking keeps some pairs and drops others"
    for row in mined:
        i = pairs["anchor"].index(row["anchor"])
        window = {corpus[j] for j in order[i, 5:15].tolist()}
        negatives = [row[f"negative_{k}"] for k in (1, 2, 3)]
        assert len(set(negatives)) == 3
        assert all(n in window and n != row["positive"] and n != row["anchor"] for n in negatives)


def test_kalm_pads_with_random_texts_when_the_window_is_short(model) -> None:
    corpus, pairs = corpus_and_pairs(n_pairs=4, n_corpus=12)
    mined = mine_hard_negatives(
        pairs, model, corpus, num_negatives=5, rank_window=(9, 12), consistency_top_k=12, show_progress_bar=False
    )
    assert len(mined) == 4
    for row in mined:
        negatives = [row[f"negative_{k}"] for k in range(1, 6)]
        assert len(set(negatives)) == 5 and row["positive"] not in negatives


def test_lg_anna_keeps_what_the_loss_filter_keeps(model) -> None:
    corpus, pairs = corpus_and_pairs(n_pairs=10, n_corpus=40, seed=3)
    mined = mine_hard_negatives(
        pairs, model, corpus, recipe="lg_anna", num_negatives=2, top_k=20, relative_margin=0.05, show_progress_bar=False
    )
    scores = ranking(model, pairs["anchor"], corpus)
    checked = 0
    for row in mined:
        i = pairs["anchor"].index(row["anchor"])
        positive = scores[i, corpus.index(row["positive"])]
        top = scores[i].topk(20)
        candidates = [j for j in top.indices.tolist() if corpus[j] != row["positive"]]
        keep = ~false_negative_mask(positive.view(1), scores[i, candidates], "relative", 0.05)
        expected = [corpus[j] for j, k in zip(candidates, keep.tolist(), strict=True) if k][:2]
        assert [row["negative_1"], row["negative_2"]] == expected
        checked += 1
    assert checked > 0


def test_teacher_scores_bi_encoder_and_cross_encoder(model) -> None:
    corpus, pairs = corpus_and_pairs(n_pairs=5)
    triplets = pairs.add_column("negative", corpus[10:15])
    scored = add_teacher_scores(triplets, model, show_progress_bar=False)
    anchors = model.encode(triplets["anchor"], convert_to_tensor=True, normalize_embeddings=True)
    for k, column in enumerate(("positive", "negative")):
        docs = model.encode(triplets[column], convert_to_tensor=True, normalize_embeddings=True)
        torch.testing.assert_close(torch.tensor(scored["scores"])[:, k], (anchors * docs).sum(-1), atol=1e-5, rtol=0)

    class LengthCrossEncoder:
        def predict(self, pairs, batch_size, show_progress_bar):
            return [float(len(a) - len(b)) for a, b in pairs]

    crossed = add_teacher_scores(triplets, LengthCrossEncoder(), column_name="label", show_progress_bar=False)
    assert crossed["label"][0] == [len(triplets["anchor"][0]) - len(triplets[c][0]) for c in ("positive", "negative")]


def test_mining_errors_name_the_argument(model) -> None:
    corpus, pairs = corpus_and_pairs(n_pairs=3)
    with pytest.raises(ValueError, match="no column 'query'"):
        mine_hard_negatives(pairs, model, corpus, anchor_column="query")
    with pytest.raises(ValueError, match="`recipe`"):
        mine_hard_negatives(pairs, model, corpus, recipe="bm25")
    with pytest.raises(ValueError, match="`rank_window`"):
        mine_hard_negatives(pairs, model, corpus, rank_window=(10, 5), show_progress_bar=False)
    with pytest.raises(ValueError, match="no column"):
        add_teacher_scores(pairs, model, candidate_columns=["negative"])
