"""A tiny SentenceTransformer built from configs (no downloads), and a small retrieval data set for it."""

from __future__ import annotations

from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "red",
    "green",
    "blue",
    "small",
    "large",
    "fast",
    "slow",
    "cat",
    "dog",
    "bird",
    "fish",
    "car",
    "bus",
    "train",
    "plane",
    "tree",
    "flower",
    "river",
    "hill",
    "runs",
    "sleeps",
    "flies",
    "swims",
    "eats",
    "sings",
    "the",
    "a",
    "of",
    "and",
]


def tiny_sentence_transformer(directory: Path, seed: int = 0, words: list[str] | None = None) -> SentenceTransformer:
    """A 1-layer, 16-d BERT with mean pooling, saved to `directory` and loaded as a SentenceTransformer."""
    torch.manual_seed(seed)
    vocab = {token: i for i, token in enumerate(SPECIAL + (words or WORDS))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=32,
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    transformer = Transformer(str(directory), max_seq_length=32)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling], device="cpu")


def retrieval_rows(n: int = 16, negatives: int = 3, seed: int = 0) -> dict[str, list[str]]:
    """(anchor, positive, negative_1..M) rows of random short sentences."""
    g = torch.Generator().manual_seed(seed)

    def sentence() -> str:
        return " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (4,), generator=g))

    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    rows.update({f"negative_{k}": [] for k in range(1, negatives + 1)})
    for _ in range(n):
        for column in rows:
            rows[column].append(sentence())
    return rows
