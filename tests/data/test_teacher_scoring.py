"""Teacher scoring for Margin-MSE: the ensemble mean per pair, resuming from the cache, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasets import load_from_disk

from hf_margin.cli import main
from hf_margin.data.teacher_scoring import cross_encoder_scores, score_with_teachers
from tests.trainers.test_margin_mse_trainer import cross_encoder, triples
from tests.trainers.tiny_lm import tiny_tokenizer


def test_scores_are_the_mean_of_each_teachers_logit() -> None:
    teachers = [(cross_encoder(seed).eval(), tiny_tokenizer()) for seed in (1, 2)]
    data = triples(4)
    passages = [[data[i][c] for c in ("positive", "negative_1", "negative_2")] for i in range(4)]
    mean = cross_encoder_scores(teachers, data["query"], passages, max_length=16)
    singles = []
    for teacher, tokenizer in teachers:
        rows = []
        for query, group in zip(data["query"], passages, strict=True):
            encoded = tokenizer([query] * 3, group, return_tensors="pt", padding=True)
            with torch.no_grad():
                rows.append(teacher(**encoded).logits[:, 0])
        singles.append(torch.stack(rows))
    torch.testing.assert_close(mean, (singles[0] + singles[1]) / 2, atol=1e-5, rtol=1e-5)


def test_resumes_and_replaces_the_column(tmp_path: Path) -> None:
    teachers = [(cross_encoder(1), tiny_tokenizer())]
    data = triples(6).remove_columns("teacher_scores")
    cache = tmp_path / "scores.json"
    full = score_with_teachers(data, teachers, batch_size=2, cache_file=cache, progress=False)
    saved = json.loads(cache.read_text())
    saved["scores"] = saved["scores"][:2]
    cache.write_text(json.dumps(saved))
    calls = []
    teachers[0][0].register_forward_pre_hook(lambda *args: calls.append(1))
    resumed = score_with_teachers(data, teachers, batch_size=2, cache_file=cache, progress=False)
    assert len(calls) == 2
    torch.testing.assert_close(torch.tensor(resumed["teacher_scores"]), torch.tensor(full["teacher_scores"]))
    assert len(full["teacher_scores"][0]) == 3
    with pytest.raises(ValueError, match=">= 2 passage columns"):
        score_with_teachers(data.select_columns(["query", "positive"]), teachers)


def test_cli(tmp_path: Path) -> None:
    teacher = tmp_path / "teacher"
    cross_encoder(3).save_pretrained(teacher)
    tiny_tokenizer().save_pretrained(teacher)
    triples(4).remove_columns("teacher_scores").to_json(tmp_path / "rows.jsonl")
    out = tmp_path / "scored"
    assert main(
        [
            "score-teachers",
            "--dataset",
            str(tmp_path / "rows.jsonl"),
            "--teacher",
            str(teacher),
            "--teacher",
            str(teacher),
            "--out",
            str(out),
            "--max-length",
            "16",
        ]
    ) in (0, None)
    scored = load_from_disk(str(out))
    assert len(scored) == 4 and len(scored["teacher_scores"][0]) == 3


def test_another_teacher_or_setup_gets_its_own_scores(tmp_path: Path) -> None:
    data, cache = triples(4).remove_columns("teacher_scores"), tmp_path / "scores.json"
    score_with_teachers(data, [(cross_encoder(1), tiny_tokenizer())], cache_file=cache, progress=False)
    with pytest.raises(ValueError, match=r"scores\.json was written for another setup.*teachers"):
        score_with_teachers(data, [(cross_encoder(2), tiny_tokenizer())], cache_file=cache, progress=False)
    with pytest.raises(ValueError, match=r"scores\.json was written for another setup.*aggregation"):
        score_with_teachers(
            data, [(cross_encoder(1), tiny_tokenizer())], aggregation="max", cache_file=cache, progress=False
        )
    with pytest.raises(ValueError, match=r"scores\.json was written for another setup.*columns"):
        score_with_teachers(
            data,
            [(cross_encoder(1), tiny_tokenizer())],
            passage_columns=["positive", "negative_2"],
            cache_file=cache,
            progress=False,
        )
