"""A frozen sentence encoder with a logistic-regression head: the reward model and judge of the MADPO runs.

It behaves as a transformers sequence classifier (``model(**tokenizer(texts)).logits``), so
`hf_margin.data.preference_scoring` scores with it like with any reward model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from transformers.modeling_outputs import SequenceClassifierOutput


class SentenceEmbeddingClassifier(nn.Module):
    """Mean-pooled, L2-normalised embeddings of a frozen encoder, scored by a trainable linear layer."""

    def __init__(self, encoder: Any, num_labels: int = 2) -> None:
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.head = nn.Linear(int(encoder.config.hidden_size), num_labels)

    def embed(self, input_ids: Tensor, attention_mask: Tensor, **encoder_kwargs: Any) -> Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **encoder_kwargs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0), dim=-1)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, **encoder_kwargs: Any) -> SequenceClassifierOutput:
        with torch.no_grad():
            embeddings = self.embed(input_ids, attention_mask, **encoder_kwargs)
        return SequenceClassifierOutput(logits=self.head(embeddings))

    @torch.no_grad()
    def embed_texts(self, tokenizer: Any, texts: Sequence[str], batch_size: int = 64, max_length: int = 128) -> Tensor:
        chunks = []
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(
                list(texts[start : start + batch_size]),
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_length,
            )
            chunks.append(self.embed(**encoded))
        return torch.cat(chunks)

    def fit(
        self, tokenizer: Any, texts: Sequence[str], labels: Sequence[int], weight_decay: float = 1e-4, steps: int = 300
    ) -> float:
        """Train the head by (L2-regularised) logistic regression on the frozen embeddings; returns train accuracy."""
        x, y = self.embed_texts(tokenizer, texts), torch.as_tensor(list(labels))
        optimizer = torch.optim.Adam(self.head.parameters(), lr=0.05, weight_decay=weight_decay)
        for _ in range(steps):
            loss = nn.functional.cross_entropy(self.head(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return float((self.head(x).argmax(1) == y).float().mean())
