"""The embedding demo entry: each compared method's loss, the table rows, and a tiny real run (heavy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

from hf_margin.demo import DemoContext
from hf_margin.demo import embedding as embedding_demo
from hf_margin.embeddings import MarginEmbeddingLoss
from tests.demo.interruptions import FirstStep, StopAt
from tests.embeddings.tiny_st import retrieval_rows, tiny_sentence_transformer


def test_each_method_gets_its_loss(tmp_path: Path) -> None:
    model = tiny_sentence_transformer(tmp_path / "tiny")
    setup = embedding_demo.EmbeddingSetup()
    losses = {m: embedding_demo.make_loss(m, model, model, setup) for m in embedding_demo.METHODS}
    assert isinstance(losses["MNRL"], MultipleNegativesRankingLoss)
    assert isinstance(losses["GISTEmbedLoss"], GISTEmbedLoss) and losses["GISTEmbedLoss"].temperature == 0.05
    ours = {m: losses[m].options for m in embedding_demo.OURS}
    assert all(isinstance(losses[m], MarginEmbeddingLoss) for m in embedding_demo.OURS)
    assert ours["ours: focal"].focal_gamma == 2.0 and ours["ours: focal"].filter_strategy is None
    assert ours["ours: filter"].filter_strategy == "relative" and ours["ours: filter"].mixing is None
    assert ours["ours: mixing"].mixing == "pairwise" and ours["ours: mixing"].distill_weight == 0
    assert ours["ours: soft labels"].distill_weight == 1.0 and ours["ours: soft labels"].focal_gamma == 0
    everything = ours["ours: all parts"]
    assert everything.focal_gamma and everything.filter_strategy and everything.mixing and everything.distill_weight
    with pytest.raises(ValueError, match="unknown method"):
        embedding_demo.make_loss("triplet", model, model, setup)


def test_rows_compare_ours_with_mnrl_and_baselines_with_zero_shot() -> None:
    metrics = {"R@1": 0.5, "R@10": 0.8, "nDCG@10": 0.6}
    results = {
        "zero-shot": {"ICD": metrics},
        "MNRL + hard negatives": {"ICD": {k: v + 0.1 for k, v in metrics.items()}},
        "ours: focal": {"ICD": {k: v + 0.2 for k, v in metrics.items()}},
    }
    rows = embedding_demo.rows_from_results(results, {"MNRL + hard negatives": 1.0, "ours: focal": 2.0})
    assert [(r.method, r.baseline) for r in rows[::3]] == [
        ("MNRL + hard negatives", "zero-shot"),
        ("ours: focal", "MNRL + hard negatives"),
    ]
    assert rows[3].ours == pytest.approx(0.7) and rows[3].baseline_value == pytest.approx(0.6)


@pytest.mark.heavy
def test_tiny_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_MARGIN_CACHE", str(tmp_path / "cache"))
    setup = embedding_demo.EmbeddingSetup(
        methods=("MNRL + hard negatives", "ours: all parts"), steps=2, batch_size=8, test_queries=30
    )
    rows = embedding_demo.run(DemoContext(out_dir=tmp_path), setup)
    assert len(rows) == 6 and all(0 <= r.ours <= 1 for r in rows)
    report = json.loads((tmp_path / "embedding.json").read_text())
    logs = report["training_logs"]["ours: all parts"]
    assert logs and {"filtered_share", "mean_focal_weight", "similarity_gap"} <= set(logs[-1])
    assert 8 <= report["training_rows"] <= 19, "1.2 x the budget's rows, less the dropped pairs"
    assert list((tmp_path / "cache").glob("icd_mined_*.json")), "the mined rows are cached"


def test_cached_variants_and_focal_normalisation(tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.losses import (
        CachedGISTEmbedLoss,
        CachedMultipleNegativesRankingLoss,
    )

    from hf_margin.embeddings import CachedMarginEmbeddingLoss

    model = tiny_sentence_transformer(tmp_path / "tiny")
    setup = embedding_demo.EmbeddingSetup(mini_batch_size=8, focal_normalize=True)
    losses = {m: embedding_demo.make_loss(m, model, model, setup) for m in embedding_demo.METHODS}
    assert isinstance(losses["MNRL + hard negatives"], CachedMultipleNegativesRankingLoss)
    assert isinstance(losses["GISTEmbedLoss"], CachedGISTEmbedLoss)
    assert all(isinstance(losses[m], CachedMarginEmbeddingLoss) for m in embedding_demo.OURS)
    assert {losses[m].mini_batch_size for m in losses if m != "MNRL"} == {8}
    normalised = {m for m in embedding_demo.OURS if losses[m].loss.options.focal_normalize}
    assert normalised == {"ours: focal", "ours: all parts"}
    plain = embedding_demo.make_loss("ours: focal", model, model, embedding_demo.EmbeddingSetup())
    assert isinstance(plain, MarginEmbeddingLoss) and not plain.options.focal_normalize


def test_an_interrupted_training_resumes_from_its_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets
    import torch

    from hf_margin.demo.data import pretrained

    tiny_sentence_transformer(tmp_path / "tiny")
    monkeypatch.setattr(pretrained, "minilm_path", lambda: str(tmp_path / "tiny"))
    rows = datasets.Dataset.from_dict(retrieval_rows(24)).map(lambda _: {"scores": [0.9, 0.5, 0.4, 0.1]})
    setup = embedding_demo.EmbeddingSetup(steps=6, batch_size=4, max_seq_length=16, learning_rate=1e-2)
    method = "ours: all parts"  # the mixing draws random numbers, the soft labels read the scores column
    guide = tiny_sentence_transformer(tmp_path / "guide", seed=1)

    whole, whole_logs = embedding_demo.train(method, rows, guide, setup, tmp_path / "whole", checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        embedding_demo.train(method, rows, guide, setup, tmp_path / "cut", checkpoint_every=2, callbacks=[StopAt(5)])
    first = FirstStep()
    resumed, logs = embedding_demo.train(
        method, rows, guide, setup, tmp_path / "cut", checkpoint_every=2, callbacks=[first]
    )

    assert first.first == 5, "the steps after checkpoint 4 are trained again, the ones before are not"
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=f"{name} differs from the uninterrupted training")
    assert [entry["loss"] for entry in logs] == [entry["loss"] for entry in whole_logs], "the logs carry over"
    run = embedding_demo.run_dir(tmp_path / "cut", method, setup)
    assert [p.name for p in run.glob("checkpoint-*")] == ["checkpoint-6"], "the last one is kept"
