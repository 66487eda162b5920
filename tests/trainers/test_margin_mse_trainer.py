"""MarginMSETrainer: cross-encoder and bi-encoder students, precomputed or on-the-fly teachers, gradient
accumulation, checkpoint resume, two-process DDP, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification, BertModel

from hf_margin.trainers import MarginMSETrainer, MarginMSETrainingArguments
from tests.multiprocess import run_ranks
from tests.trainers.tiny_lm import WORDS, tiny_tokenizer


def bert_config() -> BertConfig:
    tokenizer = tiny_tokenizer()
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def cross_encoder(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(bert_config())


def triples(n: int = 8, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)

    def text() -> str:
        return " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (4,), generator=g))

    return Dataset.from_dict(
        {
            "query": [text() for _ in range(n)],
            "positive": [text() for _ in range(n)],
            "negative_1": [text() for _ in range(n)],
            "negative_2": [text() for _ in range(n)],
            "teacher_scores": torch.randn(n, 3, generator=g).tolist(),
        }
    )


def arguments(tmp_path: Path, **kwargs) -> MarginMSETrainingArguments:
    options = {
        "per_device_train_batch_size": 8,
        "max_steps": 1,
        "learning_rate": 0.1,
        "optim": "sgd",
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "seed": 0,
        "lr_scheduler_type": "constant",
        "max_length": 16,
    }
    return MarginMSETrainingArguments(str(tmp_path), **(options | kwargs))


def trained(
    model: torch.nn.Module, tmp_path: Path, data: Dataset | None = None, teachers: list | None = None, **kwargs
) -> torch.nn.Module:
    trainer = MarginMSETrainer(
        model,
        arguments(tmp_path, **kwargs),
        train_dataset=data or triples(),
        processing_class=tiny_tokenizer(),
        teachers=teachers,
    )
    trainer.train()
    return model


def test_loss_equals_the_functional_on_the_student_scores(tmp_path: Path) -> None:
    model = cross_encoder()
    trainer = MarginMSETrainer(model, arguments(tmp_path), train_dataset=triples(), processing_class=tiny_tokenizer())
    batch = trainer.data_collator([triples()[i] for i in range(4)])
    loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    scores, teacher = outputs["scores"], batch["teacher_scores"]
    expected = ((scores[:, :1] - scores[:, 1:]) - (teacher[:, :1] - teacher[:, 1:])).pow(2).mean()
    torch.testing.assert_close(loss, expected)
    assert scores.shape == (4, 3)


@pytest.mark.parametrize("student", ["cross-encoder", "bi-encoder"])
def test_gradient_accumulation_equals_the_bigger_batch(tmp_path: Path, student: str) -> None:
    make = cross_encoder if student == "cross-encoder" else lambda: (torch.manual_seed(0), BertModel(bert_config()))[1]
    big = trained(make(), tmp_path / "big", student_type=student)
    accumulated = trained(
        make(), tmp_path / "ga", student_type=student, per_device_train_batch_size=4, gradient_accumulation_steps=2
    )
    untouched = make()
    for a, b in zip(big.parameters(), accumulated.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert any(not torch.equal(a, c) for a, c in zip(big.parameters(), untouched.parameters(), strict=True))


def test_on_the_fly_teachers_equal_their_precomputed_mean(tmp_path: Path) -> None:
    teachers = [(cross_encoder(seed), tiny_tokenizer()) for seed in (1, 2)]
    data = triples()
    probe = MarginMSETrainer(
        cross_encoder(),
        arguments(tmp_path / "p"),
        train_dataset=data,
        processing_class=tiny_tokenizer(),
        teachers=teachers,
    )
    batch = probe.data_collator([data[i] for i in range(8)])
    mean = probe.teacher_scores(batch)
    precomputed = data.remove_columns("teacher_scores").add_column("teacher_scores", mean.tolist())
    live = trained(cross_encoder(), tmp_path / "live", data.remove_columns("teacher_scores"), teachers=teachers)
    stored = trained(cross_encoder(), tmp_path / "stored", precomputed)
    for a, b in zip(live.parameters(), stored.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_resume_from_checkpoint_gives_the_same_weights(tmp_path: Path) -> None:
    options = {"max_steps": 4, "per_device_train_batch_size": 2, "optim": "adamw_torch", "learning_rate": 1e-3}
    straight = trained(cross_encoder(), tmp_path / "straight", **options)
    first = MarginMSETrainer(
        cross_encoder(),
        arguments(tmp_path / "resumed", **options, save_strategy="steps", save_steps=2),
        train_dataset=triples(),
        processing_class=tiny_tokenizer(),
    )
    first.args.max_steps = 2
    first.train()
    model = cross_encoder()
    second = MarginMSETrainer(
        model, arguments(tmp_path / "resumed", **options), train_dataset=triples(), processing_class=tiny_tokenizer()
    )
    second.train(resume_from_checkpoint=str(tmp_path / "resumed" / "checkpoint-2"))
    for a, b in zip(straight.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_errors(tmp_path: Path) -> None:
    no_teacher = triples().remove_columns("teacher_scores")
    with pytest.raises(ValueError, match="no teacher scores"):
        MarginMSETrainer(
            cross_encoder(), arguments(tmp_path), train_dataset=no_teacher, processing_class=tiny_tokenizer()
        )
    with pytest.raises(ValueError, match="at least one negative"):
        MarginMSETrainer(
            cross_encoder(),
            arguments(tmp_path),
            processing_class=tiny_tokenizer(),
            train_dataset=triples().select_columns(["query", "positive", "teacher_scores"]),
        )
    with pytest.raises(ValueError, match="`student_type`"):
        arguments(tmp_path, student_type="colbert")
    with pytest.raises(TypeError, match="MarginMSETrainingArguments"):
        from transformers import TrainingArguments

        MarginMSETrainer(cross_encoder(), TrainingArguments(str(tmp_path)), processing_class=tiny_tokenizer())
    bad = triples().remove_columns("teacher_scores").add_column("teacher_scores", [[0.0, 1.0]] * 8)
    with pytest.raises(ValueError, match=r"must hold 3 numbers per row \(one per passage column\); 2 at rows"):
        MarginMSETrainer(cross_encoder(), arguments(tmp_path), train_dataset=bad, processing_class=tiny_tokenizer())


def test_reranking_metrics_at_every_evaluation(tmp_path: Path) -> None:
    from hf_margin.trainers import RerankingSet

    data = triples(8)
    dev = RerankingSet(
        queries=data["query"][:4],
        candidates=[[data[i]["positive"], data[i]["negative_1"], data[i]["negative_2"]] for i in range(4)],
        relevant=[{0}] * 4,
    )
    model = cross_encoder()
    trainer = MarginMSETrainer(
        model,
        arguments(tmp_path, eval_strategy="steps", eval_steps=1, max_steps=2),
        train_dataset=data,
        eval_dataset=data,
        processing_class=tiny_tokenizer(),
        reranking=dev,
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "eval_rerank_MRR@10" in entry]
    assert len(logged) == 2 and all(0 < entry["eval_rerank_MRR@10"] <= 1 for entry in logged)
    batch = trainer.data_collator([data[i] for i in range(4)])
    with torch.no_grad():
        model.eval()
        scores = trainer.student_scores(model, batch)
    expected = sum(1 / (1 + int((scores[i, 1:] > scores[i, 0]).sum())) for i in range(4)) / 4
    assert trainer.rerank(dev)["MRR@10"] == pytest.approx(expected)


def test_in_batch_margins_cover_every_passage_of_the_batch(tmp_path: Path) -> None:
    from hf_margin.data.teacher_scoring import cross_encoder_scores

    teachers = [(cross_encoder(1), tiny_tokenizer())]
    torch.manual_seed(0)
    student = BertModel(bert_config())
    args = arguments(tmp_path, student_type="bi-encoder", in_batch_margins=True)
    data = triples(3).remove_columns("teacher_scores")
    trainer = MarginMSETrainer(student, args, train_dataset=data, processing_class=tiny_tokenizer(), teachers=teachers)
    batch = trainer.data_collator([data[i] for i in range(3)])
    loss = trainer.compute_loss(student, batch)
    everything = [p for group in batch["passages"] for p in group]
    teacher = cross_encoder_scores(teachers, batch["queries"], [everything] * 3, max_length=16)
    scores = trainer.student_scores(student, batch, in_batch=True)
    expected = torch.stack(
        [((scores[i, 3 * i] - scores[i]) - (teacher[i, 3 * i] - teacher[i])).pow(2).sum() / 8 for i in range(3)]
    ).mean()
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="in_batch_margins needs"):
        MarginMSETrainer(student, args, train_dataset=triples(3), processing_class=tiny_tokenizer())


def _train_one_rank(rank: int, world: int, port: int, folder: str, queue) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    model = trained(cross_encoder(), Path(folder), per_device_train_batch_size=8 // world, max_steps=2)
    queue.put((rank, [p.detach().numpy().copy() for p in model.parameters()]))  # numpy: outlives the process


def test_two_processes_train_like_one_process_with_the_whole_batch(tmp_path: Path) -> None:
    """DDP on gloo, 2 processes x batch 4 for 2 steps: the weights equal 1 process x batch 8 (every rank)."""
    single = trained(cross_encoder(), tmp_path / "single", max_steps=2)
    assert any(not torch.equal(a, b) for a, b in zip(single.parameters(), cross_encoder().parameters(), strict=True))
    results = run_ranks(_train_one_rank, str(tmp_path / "ddp"))
    for rank in range(2):
        for a, b in zip(single.parameters(), results[rank], strict=True):
            torch.testing.assert_close(a, torch.from_numpy(b), atol=1e-6, rtol=1e-5)


def _with_column(data: Dataset, column: str, values: list) -> Dataset:
    return data.remove_columns(column).add_column(column, values)


def _scores(n: int = 8, **changes: object) -> list:
    scores: list = [[0.5, 0.0, -0.5] for _ in range(n)]
    for row, value in changes.items():
        scores[int(row.removeprefix("row"))] = value
    return scores


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: _with_column(triples(), "teacher_scores", _scores(row5=[0.1, float("nan"), 0.2])),
            r"`teacher_scores` must be finite; NaN or inf at rows \[5\]",
        ),
        (
            lambda: _with_column(triples(), "teacher_scores", _scores(row6=[0.1, float("inf"), 0.2])),
            r"NaN or inf at rows \[6\]",
        ),
        (
            lambda: _with_column(triples(), "teacher_scores", _scores(row4=[0.1, 0.2])),
            r"`teacher_scores` must hold 3 numbers per row \(one per passage column\); 2 at rows \[4\]",
        ),
        (
            lambda: _with_column(triples(), "teacher_scores", [["0.5", "0.1", "0.2"]] * 8),
            r"`teacher_scores` must hold lists of numbers, got list<item: string>",
        ),
        (
            lambda: _with_column(triples(), "teacher_scores", _scores(row2=None)),
            r"`teacher_scores` must have no missing values; missing at rows \[2\]",
        ),
        (lambda: triples().rename_column("query", "question"), r"needs a `query` column in `train_dataset`"),
        (lambda: _with_column(triples(), "positive", list(range(8))), r"`positive` must hold text, got int64"),
        (lambda: triples().select([]), r"`train_dataset` is empty"),
    ],
)
def test_bad_datasets_are_refused_at_construction(tmp_path: Path, make: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MarginMSETrainer(
            cross_encoder(),
            arguments(tmp_path),
            train_dataset=make(),
            processing_class=tiny_tokenizer(),  # type: ignore[operator]
        )


def test_bad_eval_datasets_are_refused_at_construction(tmp_path: Path) -> None:
    bad = _with_column(triples(), "teacher_scores", _scores(row1=[float("nan")] * 3))
    with pytest.raises(
        ValueError, match=r"`teacher_scores` must be finite; NaN or inf at rows \[1\] of `eval_dataset`"
    ):
        MarginMSETrainer(
            cross_encoder(),
            arguments(tmp_path),
            train_dataset=triples(),
            eval_dataset=bad,
            processing_class=tiny_tokenizer(),
        )


def test_rows_are_validated_in_the_view_after_select(tmp_path: Path) -> None:
    data = _with_column(triples(), "teacher_scores", _scores(row0=[float("nan")] * 3))
    MarginMSETrainer(  # row 0 is not selected: nothing to refuse
        cross_encoder(), arguments(tmp_path), train_dataset=data.select(range(1, 8)), processing_class=tiny_tokenizer()
    )
    with pytest.raises(ValueError, match=r"NaN or inf at rows \[2\]"):  # the bad row is the view's third
        MarginMSETrainer(
            cross_encoder(),
            arguments(tmp_path),
            train_dataset=data.select([3, 4, 0]),
            processing_class=tiny_tokenizer(),
        )


def test_streaming_and_torch_datasets_are_not_inspected(tmp_path: Path) -> None:
    rows = list(triples())
    streamed = Dataset.from_list(rows).to_iterable_dataset()
    MarginMSETrainer(cross_encoder(), arguments(tmp_path), train_dataset=streamed, processing_class=tiny_tokenizer())
