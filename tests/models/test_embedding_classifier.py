"""The frozen-encoder logistic-regression classifier used as reward model and judge."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertModel

from hf_margin.data.preference_scoring import reward_scores
from hf_margin.models.embedding_classifier import SentenceEmbeddingClassifier
from tests.trainers.tiny_lm import tiny_tokenizer


def _classifier() -> SentenceEmbeddingClassifier:
    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(
            vocab_size=len(tiny_tokenizer()),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )
    return SentenceEmbeddingClassifier(encoder)


def test_fits_a_separable_task_and_keeps_the_encoder_frozen() -> None:
    model, tokenizer = _classifier(), tiny_tokenizer()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    texts = ["good great fun", "great good", "fun good film", "bad awful dull", "awful bad", "dull bad film"] * 3
    labels = [1, 1, 1, 0, 0, 0] * 3
    assert model.fit(tokenizer, texts, labels, steps=300) == 1.0
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, before[key])
    scores = reward_scores(model, tokenizer, ["good great fun", "bad awful dull"], 32)
    assert scores[0] > 0 > scores[1]  # log-odds of class 1


def test_padding_does_not_change_the_embedding() -> None:
    model, tokenizer = _classifier(), tiny_tokenizer()
    alone = model.embed_texts(tokenizer, ["good film"])
    padded = model.embed_texts(tokenizer, ["good film", "a very very long dull review of the film"])[:1]
    torch.testing.assert_close(alone, padded, rtol=1e-5, atol=1e-6)
