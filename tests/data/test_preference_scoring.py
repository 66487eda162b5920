"""Scoring preference pairs with a reward model: values, classifier log-odds, resuming, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

datasets = pytest.importorskip("datasets")
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

from hf_margin.data.preference_scoring import reward_scores, score_preference_margins  # noqa: E402
from tests.trainers.tiny_lm import preference_rows, tiny_tokenizer  # noqa: E402


def _reward_model(labels: int = 1) -> BertForSequenceClassification:
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=labels,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForSequenceClassification(config).eval()


def _pairs() -> object:
    rows = preference_rows()
    rows.pop("margin")
    return datasets.Dataset.from_dict(rows)


def test_margins_are_reward_differences() -> None:
    model, tokenizer, data = _reward_model(), tiny_tokenizer(), _pairs()
    scored = score_preference_margins(data, model, tokenizer, batch_size=3, progress=False)
    chosen = reward_scores(model, tokenizer, [p + c for p, c in zip(data["prompt"], data["chosen"], strict=True)], 64)
    rejected = reward_scores(
        model, tokenizer, [p + r for p, r in zip(data["prompt"], data["rejected"], strict=True)], 64
    )
    torch.testing.assert_close(torch.tensor(scored["margin"]), chosen - rejected)


def test_two_class_classifier_uses_log_odds() -> None:
    model, tokenizer = _reward_model(labels=2), tiny_tokenizer()
    texts = ["the film was great", "awful"]
    encoded = tokenizer(texts, return_tensors="pt", padding=True)
    logits = model(**encoded).logits
    torch.testing.assert_close(reward_scores(model, tokenizer, texts, 64), (logits[:, 1] - logits[:, 0]).detach())


def test_resumes_from_the_cache(tmp_path: Path) -> None:
    model, tokenizer, data = _reward_model(), tiny_tokenizer(), _pairs()
    cache = tmp_path / "margins.json"
    full = score_preference_margins(data, model, tokenizer, batch_size=2, cache_file=cache, progress=False)
    partial = json.loads(cache.read_text())
    partial["scores"] = partial["scores"][:4]  # as if interrupted after two batches
    cache.write_text(json.dumps(partial))
    calls = []
    model.register_forward_pre_hook(lambda *args: calls.append(1))
    resumed = score_preference_margins(data, model, tokenizer, batch_size=2, cache_file=cache, progress=False)
    assert len(calls) == 2 * 2  # two remaining batches, chosen and rejected
    assert resumed["margin"] == pytest.approx(full["margin"])
    with pytest.raises(ValueError, match="was written for another dataset"):
        score_preference_margins(data.select(range(4)), model, tokenizer, cache_file=cache, progress=False)


def test_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['rejected'\]"):
        score_preference_margins(_pairs().remove_columns("rejected"), _reward_model(), tiny_tokenizer())


def test_another_reward_model_gets_its_own_scores(tmp_path: Path) -> None:
    tokenizer, data, cache = tiny_tokenizer(), _pairs(), tmp_path / "margins.json"
    first = score_preference_margins(data, _reward_model(), tokenizer, batch_size=2, cache_file=cache, progress=False)
    second_model = _reward_model()
    with torch.no_grad():
        second_model.classifier.weight.mul_(-1.0)  # another reward model, same name and shapes
    with pytest.raises(ValueError, match=r"margins\.json was written for another setup.*reward_model"):
        score_preference_margins(data, second_model, tokenizer, batch_size=2, cache_file=cache, progress=False)
    with pytest.raises(ValueError, match=r"margins\.json was written for another setup.*max_length"):
        score_preference_margins(data, _reward_model(), tokenizer, max_length=8, cache_file=cache, progress=False)
    own = tmp_path / "second.json"
    second = score_preference_margins(data, second_model, tokenizer, batch_size=2, cache_file=own, progress=False)
    assert second["margin"] == pytest.approx([-m for m in first["margin"]], abs=1e-5)
    again = score_preference_margins(data, _reward_model(), tokenizer, batch_size=3, cache_file=cache, progress=False)
    assert again["margin"] == first["margin"]  # same setup (the batch size does not change the scores): reused


def test_a_truncated_cache_gives_a_clear_error(tmp_path: Path) -> None:
    cache = tmp_path / "margins.json"
    score_preference_margins(_pairs(), _reward_model(), tiny_tokenizer(), cache_file=cache, progress=False)
    cache.write_text(cache.read_text()[:20])
    with pytest.raises(ValueError, match=r"margins\.json is not a readable score cache.*delete it"):
        score_preference_margins(_pairs(), _reward_model(), tiny_tokenizer(), cache_file=cache, progress=False)


def test_an_interrupted_run_resumes(tmp_path: Path) -> None:
    model, tokenizer, data = _reward_model(), tiny_tokenizer(), _pairs()
    full = score_preference_margins(data, model, tokenizer, batch_size=2, progress=False)
    cache, calls = tmp_path / "margins.json", []

    def crash_on_the_third_batch(*args: object) -> None:
        calls.append(1)
        if len(calls) == 5:  # chosen and rejected per batch
            raise KeyboardInterrupt

    hook = model.register_forward_pre_hook(crash_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        score_preference_margins(data, model, tokenizer, batch_size=2, cache_file=cache, progress=False)
    assert len(json.loads(cache.read_text())["scores"]) == 4
    hook.remove()
    resumed = score_preference_margins(data, model, tokenizer, batch_size=2, cache_file=cache, progress=False)
    assert resumed["margin"] == pytest.approx(full["margin"])
