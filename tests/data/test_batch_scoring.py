"""The resumable batch scorer's cache: keyed on the setup, written atomically, clear about corrupt files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

datasets = pytest.importorskip("datasets")

from hf_margin.data import batch_scoring  # noqa: E402
from hf_margin.data.batch_scoring import model_fingerprint, score_in_batches, tokenizer_fingerprint  # noqa: E402
from tests.trainers.tiny_lm import tiny_tokenizer  # noqa: E402


def _rows() -> Any:
    return datasets.Dataset.from_dict({"x": list(range(6))})


def _double(rows: dict[str, list[Any]]) -> list[float]:
    return [2.0 * x for x in rows["x"]]


def test_a_crash_while_writing_keeps_the_last_complete_cache(tmp_path: Path, monkeypatch: Any) -> None:
    cache, replaced = tmp_path / "scores.json", []
    real_replace = os.replace

    def killed_on_the_second_write(source: str, target: str) -> None:
        replaced.append(target)
        if len(replaced) == 2:
            raise KeyboardInterrupt  # as if killed after the temporary file was written, before the swap
        real_replace(source, target)

    monkeypatch.setattr(batch_scoring.os, "replace", killed_on_the_second_write)
    with pytest.raises(KeyboardInterrupt):
        score_in_batches(_rows(), _double, 2, cache, progress=False)
    assert json.loads(cache.read_text())["scores"] == [0.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]  # no temporary file left behind
    monkeypatch.setattr(batch_scoring.os, "replace", real_replace)
    assert score_in_batches(_rows(), _double, 2, cache, progress=False) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


@pytest.mark.parametrize("text", ['{"fingerprint": "abc", "sco', "[1, 2]", '{"fingerprint": "abc"}', "\udcff"])
def test_a_corrupt_cache_names_the_file(tmp_path: Path, text: str) -> None:
    cache = tmp_path / "scores.json"
    cache.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ValueError, match=r"scores\.json is not a readable score cache.*delete it"):
        score_in_batches(_rows(), _double, 2, cache, progress=False)


def test_the_setup_is_part_of_the_key(tmp_path: Path) -> None:
    cache = tmp_path / "scores.json"
    score_in_batches(_rows(), _double, 2, cache, progress=False, setup={"model": "a", "max_length": 8})
    with pytest.raises(ValueError, match=r"another setup: max_length was 8 in the cache, is 16 now"):
        score_in_batches(_rows(), _double, 2, cache, progress=False, setup={"model": "a", "max_length": 16})
    assert score_in_batches(_rows(), _double, 2, cache, progress=False, setup={"model": "a", "max_length": 8})


def test_model_fingerprint_sees_changed_weights_and_dtypes_but_not_a_copy() -> None:
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    copy = BertForSequenceClassification(config)
    copy.load_state_dict(model.state_dict())
    assert model_fingerprint(model) == model_fingerprint(copy)
    with torch.no_grad():
        copy.bert.encoder.layer[0].output.dense.weight.add_(1e-6 * torch.randn(16, 32))  # a tiny update
    assert model_fingerprint(model) != model_fingerprint(copy)
    assert model_fingerprint(model) != model_fingerprint(model.to(torch.float64))


def test_tokenizer_fingerprint_ignores_the_padding_state_but_sees_the_vocabulary() -> None:
    used = tiny_tokenizer()
    used(["a b", "a"], padding=True, truncation=True, max_length=4)
    assert tokenizer_fingerprint(used) == tokenizer_fingerprint(tiny_tokenizer())
    other = tiny_tokenizer()
    other.add_tokens(["zebra"])
    assert tokenizer_fingerprint(other) != tokenizer_fingerprint(tiny_tokenizer())
