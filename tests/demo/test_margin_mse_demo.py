"""The Margin-MSE demo entry: its baseline losses against their anchors, the table rows, and a tiny real run
(heavy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("sentence_transformers")
from sentence_transformers import util
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from transformers import BertModel

from hf_margin.demo import DemoContext
from hf_margin.demo import margin_mse as demo
from hf_margin.trainers.margin_mse_trainer import pool
from tests.demo.interruptions import FirstStep, StopAt, StopTrainingAt
from tests.trainers.test_margin_mse_trainer import arguments, bert_config, triples
from tests.trainers.tiny_lm import tiny_tokenizer


def _batch(trainer_type: type, tmp_path: Path) -> tuple:
    torch.manual_seed(0)
    model = BertModel(bert_config())
    trainer = trainer_type(
        model,
        arguments(tmp_path, student_type="bi-encoder"),
        train_dataset=triples(),
        processing_class=tiny_tokenizer(),
    )
    return trainer, model, trainer.data_collator([triples()[i] for i in range(4)])


def test_labels_only_equals_mnrl_with_hard_negatives_on_the_dot_score(tmp_path: Path) -> None:
    trainer, model, batch = _batch(demo.LabelsOnlyTrainer, tmp_path)
    loss = trainer.compute_loss(model, batch)
    queries = pool(model(**batch["query_inputs"]).last_hidden_state, batch["query_inputs"]["attention_mask"], "mean")
    passages = pool(
        model(**batch["passage_inputs"]).last_hidden_state, batch["passage_inputs"]["attention_mask"], "mean"
    ).view(4, 3, -1)
    mnrl = MultipleNegativesRankingLoss(None, scale=1.0, similarity_fct=util.dot_score)
    columns = [queries] + [passages[:, i] for i in range(3)]
    torch.testing.assert_close(loss, mnrl.compute_loss_from_embeddings(columns, None))


def test_pointwise_baseline_is_the_mse_of_the_scores(tmp_path: Path) -> None:
    trainer, model, batch = _batch(demo.PointwiseMSETrainer, tmp_path)
    loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    torch.testing.assert_close(loss, F.mse_loss(outputs["scores"], batch["teacher_scores"]))
    shifted = dict(batch, teacher_scores=batch["teacher_scores"] + 5.0)
    gap = (outputs["scores"] - batch["teacher_scores"]).mean()
    # Unlike Margin-MSE it is not shift-invariant: mean((d - 5)^2) = mean(d^2) - 10 mean(d) + 25.
    torch.testing.assert_close(trainer.compute_loss(model, shifted), loss - 10 * gap + 25)


def test_rows_compare_distilled_students_with_labels_only() -> None:
    metrics = {"rerank MRR@10": 0.5, "rerank nDCG@10": 0.6, "retrieval MRR@10": 0.4, "retrieval nDCG@10": 0.45}
    results = {
        "zero-shot": metrics,
        "teacher": {k: v + 0.2 for k, v in metrics.items() if k.startswith("rerank")},
        "2-layer bi-encoder: labels only": {k: v + 0.1 for k, v in metrics.items()},
        "2-layer bi-encoder: Margin-MSE": {k: v + 0.15 for k, v in metrics.items()},
    }
    timings = {"teacher": 3.0, "2-layer bi-encoder: labels only": 1.0, "2-layer bi-encoder: Margin-MSE": 2.0}
    rows = demo.rows_from_results(results, timings, {"2-layer bi-encoder": 4.0})
    assert [(r.method, r.baseline) for r in rows[:2]] == [("teacher (cross-encoder)", "zero-shot")] * 2
    distilled = [r for r in rows if r.method.endswith("Margin-MSE")]
    assert len(distilled) == 4 and {r.baseline for r in distilled} == {"2-layer bi-encoder: labels only"}
    assert distilled[0].ours == pytest.approx(0.65) and distilled[0].baseline_value == pytest.approx(0.6)
    assert rows[-1].metric == "re-ranking speed-up" and rows[-1].ours == 4.0
    with pytest.raises(ValueError, match="unknown method"):
        demo.run(DemoContext(out_dir=Path("unused")), demo.DistillationSetup(methods=("RankNet",)))


@pytest.mark.heavy
def test_tiny_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_MARGIN_CACHE", str(tmp_path / "cache"))
    setup = demo.DistillationSetup(
        methods=demo.METHODS,
        teacher_steps=2,
        teacher_batch_size=4,
        steps=2,
        batch_size=4,
        rerank_queries=20,
        rerank_depth=10,
    )
    rows = demo.run(DemoContext(out_dir=tmp_path), setup)
    assert len(rows) == 2 + 3 * 4 + 1 and all(r.ours >= 0 for r in rows)
    report = json.loads((tmp_path / "margin_mse.json").read_text())
    assert report["speed_up_over_one_teacher"]["2-layer bi-encoder"] > 1, "2 layers, texts encoded separately"
    assert list((tmp_path / "cache").glob("icd_cross_encoder_*/config.json")), "the teacher is cached"
    again = demo.run(DemoContext(out_dir=tmp_path / "again"), setup)
    assert [r.ours for r in again if r.method.startswith("teacher")] == [r.ours for r in rows[:2]]


@pytest.mark.parametrize("stop", ["killed in step 5", "ended by a callback at step 4"])
def test_an_interrupted_teacher_resumes_from_its_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: str
) -> None:
    from hf_margin.demo.data import pretrained

    BertModel(bert_config()).save_pretrained(tmp_path / "bert")
    tiny_tokenizer().save_pretrained(tmp_path / "bert")
    monkeypatch.setattr(pretrained, "minilm_path", lambda: str(tmp_path / "bert"))
    rows = triples(16).rename_column("query", "anchor").select_columns(["anchor", "positive", "negative_1"])
    setup = demo.DistillationSetup(teacher_steps=6, teacher_batch_size=4, num_negatives=1, max_length=16)

    whole = demo.train_teacher(rows, setup, 0, tmp_path / "whole", checkpoint_every=2)
    if stop.startswith("killed"):
        with pytest.raises(KeyboardInterrupt):
            demo.train_teacher(rows, setup, 0, tmp_path / "cut", callbacks=[StopAt(5)], checkpoint_every=2)
    else:  # checkpoint-4 records the stop; a resumed training must not end at once (its control is not restored)
        demo.train_teacher(rows, setup, 0, tmp_path / "cut", callbacks=[StopTrainingAt(4)], checkpoint_every=2)
    first = FirstStep()
    resumed = demo.train_teacher(rows, setup, 0, tmp_path / "cut", callbacks=[first], checkpoint_every=2)

    assert first.first == 5, "the steps after checkpoint 4 are trained again, the ones before are not"
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=f"{name} differs from the uninterrupted training")
    assert [p.name for p in (tmp_path / "cut").glob("checkpoint-*")] == ["checkpoint-6"], "the last one is kept"
