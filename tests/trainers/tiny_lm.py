"""A tiny Llama and a word-level tokenizer built locally, and a small preference data set (no downloads)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM, PreTrainedTokenizerFast

WORDS = [
    "good",
    "bad",
    "great",
    "awful",
    "film",
    "movie",
    "plot",
    "acting",
    "was",
    "is",
    "the",
    "a",
    "very",
    "not",
    "fun",
    "dull",
    "review",
    "write",
]
SPECIAL = ["<pad>", "<unk>", "<s>", "</s>"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def preference_rows(n: int = 8) -> dict[str, list]:
    prompts = ["write a review", "write a very good review"]
    chosen = ["the film was great fun", "the acting is good", "a great movie", "very good plot"]
    rejected = ["the film was dull", "awful acting", "a bad movie", "the plot is not good"]
    margins = [2.5, -1.0, 0.2, 8.0, -9.0, 0.0, 4.0, 1.5]
    return {
        "prompt": [prompts[i % 2] for i in range(n)],
        "chosen": [chosen[i % 4] for i in range(n)],
        "rejected": [rejected[(i + 1) % 4] for i in range(n)],
        "margin": margins[:n],
    }


def tiny_mixtral(seed: int = 0) -> MixtralForCausalLM:
    """A two-expert Mixture-of-Experts model (router aux loss) with the tiny tokenizer's vocabulary."""
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    config = MixtralConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_local_experts=2,
        num_experts_per_tok=1,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return MixtralForCausalLM(config)
