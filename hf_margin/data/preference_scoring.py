"""Step one of the MADPO pipeline: score preference pairs with a reward model and add the margin column.

Any sequence-classification model works as the reward model: a TRL `RewardTrainer` model (one logit: the
reward) or a two-class classifier (the reward is the log-odds of class 1). The pairs are scored in batches
with a progress bar; with `cache_file`, finished batches are written as they come, so an interrupted run
resumes where it stopped. The cache is keyed on the data, the reward model's weights, its tokenizer, `max_length`
and the three text columns; a cache made with any of them different is refused (`score_in_batches`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hf_margin.data.batch_scoring import score_in_batches, scorer_identity


def _texts(tokenizer: Any, prompts: list[Any], completions: list[Any]) -> list[str]:
    if isinstance(prompts[0], list):  # conversational: lists of {"role", "content"} messages
        return [tokenizer.apply_chat_template(p + c, tokenize=False) for p, c in zip(prompts, completions, strict=True)]
    return [p + c for p, c in zip(prompts, completions, strict=True)]


@torch.no_grad()
def reward_scores(reward_model: Any, tokenizer: Any, texts: list[str], max_length: int) -> torch.Tensor:
    """One reward per text: the single logit, or the log-odds of class 1 for a two-class classifier."""
    encoded = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
    device = next(reward_model.parameters()).device
    logits = reward_model(**{k: v.to(device) for k, v in encoded.items()}).logits.float()
    if logits.shape[-1] == 1:
        return logits[:, 0].cpu()
    if logits.shape[-1] == 2:
        return (logits[:, 1] - logits[:, 0]).cpu()
    raise ValueError(f"the reward model must output 1 logit (a reward) or 2 (a classifier), got {logits.shape[-1]}")


def score_preference_margins(
    dataset: Any,
    reward_model: Any,
    tokenizer: Any,
    batch_size: int = 16,
    max_length: int = 512,
    prompt_column: str = "prompt",
    chosen_column: str = "chosen",
    rejected_column: str = "rejected",
    margin_column: str = "margin",
    cache_file: str | Path | None = None,
    progress: bool = True,
) -> Any:
    """The `datasets.Dataset` with ``margin_column = r(prompt + chosen) - r(prompt + rejected)`` for every row.

    With `cache_file`, finished batches are kept there and a rerun resumes; a cache written for other data, another
    reward model (weights or tokenizer), `max_length` or columns raises a ValueError naming what differs.
    """
    missing = [c for c in (prompt_column, chosen_column, rejected_column) if c not in dataset.column_names]
    if missing:
        raise ValueError(f"the dataset lacks the column(s) {missing}; it has {dataset.column_names}")
    reward_model.eval()

    def margins(rows: dict[str, list[Any]]) -> list[float]:
        chosen = reward_scores(
            reward_model, tokenizer, _texts(tokenizer, rows[prompt_column], rows[chosen_column]), max_length
        )
        rejected = reward_scores(
            reward_model, tokenizer, _texts(tokenizer, rows[prompt_column], rows[rejected_column]), max_length
        )
        return (chosen - rejected).tolist()

    setup = {
        "reward_model": scorer_identity(reward_model, tokenizer),
        "max_length": max_length,
        "columns": [prompt_column, chosen_column, rejected_column],
    }
    scores = score_in_batches(dataset, margins, batch_size, cache_file, "scoring pairs", progress, setup)
    if margin_column in dataset.column_names:
        dataset = dataset.remove_columns(margin_column)
    return dataset.add_column(margin_column, scores)
