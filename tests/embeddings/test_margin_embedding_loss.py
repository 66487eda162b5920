"""MarginEmbeddingLoss with sentence-transformers: equals MNRL when neutral, cached equals uncached, guide model,
trainer integration (statistics, soft labels, model card, save/load), multi-process gathering, clear errors."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")

import datasets
import torch
import torch.distributed as dist
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.training_args import (
    SentenceTransformerTrainingArguments,
)

from hf_margin.callbacks import log_loss_statistics
from hf_margin.embeddings import CachedMarginEmbeddingLoss, MarginEmbeddingLoss
from tests.embeddings.tiny_st import retrieval_rows, tiny_sentence_transformer
from tests.multiprocess import run_ranks

ALL_PARTS = {
    "focal_gamma": 2.0,
    "filter_strategy": "relative",
    "filter_margin": 0.05,
    "mixing": "pairwise",
    "num_mixed": 2,
    "symmetric": True,
    "seed": 0,
}


@pytest.fixture
def model(tmp_path: Path) -> SentenceTransformer:
    return tiny_sentence_transformer(tmp_path / "tiny")


def features(model: SentenceTransformer, rows: dict[str, list[str]]) -> list[dict[str, torch.Tensor]]:
    return [model.preprocess(texts) for texts in rows.values()]


def value_and_grads(loss: torch.nn.Module, model: SentenceTransformer, feats: list, labels=None):
    model.zero_grad()
    value = loss(feats, labels)
    value.backward()
    return value.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("negatives", [0, 2])
@pytest.mark.parametrize("symmetric", [False, True])
def test_neutral_loss_equals_mnrl_values_and_gradients(model, negatives: int, symmetric: bool) -> None:
    feats = features(model, retrieval_rows(n=8, negatives=negatives))
    directions = ("query_to_doc", "doc_to_query") if symmetric else ("query_to_doc",)
    mnrl = MultipleNegativesRankingLoss(model, directions=directions, partition_mode="per_direction")
    ours = MarginEmbeddingLoss(model, symmetric=symmetric)
    expected, expected_grads = value_and_grads(mnrl, model, feats)
    value, grads = value_and_grads(ours, model, feats)
    torch.testing.assert_close(value, expected)
    for grad, reference in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, reference)


def test_cached_mode_equals_uncached_with_every_part_on(model) -> None:
    rows = retrieval_rows(n=12, negatives=3)
    feats = features(model, rows)
    teacher = torch.randn(12, 4)
    options = {**ALL_PARTS, "distill_weight": 0.5}
    plain, plain_grads = value_and_grads(MarginEmbeddingLoss(model, **options), model, feats, teacher)
    cached_loss = CachedMarginEmbeddingLoss(model, mini_batch_size=5, **options)
    cached, cached_grads = value_and_grads(cached_loss, model, feats, teacher)
    torch.testing.assert_close(cached, plain)
    for grad, reference in zip(cached_grads, plain_grads, strict=True):
        torch.testing.assert_close(grad, reference, atol=1e-6, rtol=1e-4)
    assert set(cached_loss.pop_statistics()) == {"filtered_share", "mean_focal_weight", "similarity_gap"}


def test_guide_identical_to_the_model_equals_self_guided(model) -> None:
    feats = features(model, retrieval_rows(n=8, negatives=2))
    guide = copy.deepcopy(model)
    self_guided = MarginEmbeddingLoss(model, filter_strategy="absolute", filter_margin=0.0)
    guided = MarginEmbeddingLoss(model, filter_strategy="absolute", filter_margin=0.0, guide=guide)
    assert not guided.must_retokenize
    torch.testing.assert_close(guided(feats), self_guided(feats))


def test_guide_with_another_tokenizer_is_retokenized(model, tmp_path: Path) -> None:
    from tests.embeddings.tiny_st import WORDS

    guide = tiny_sentence_transformer(tmp_path / "guide", seed=1, words=list(reversed(WORDS)))
    loss = MarginEmbeddingLoss(model, filter_strategy="relative", guide=guide)
    assert loss.must_retokenize
    feats = features(model, retrieval_rows(n=6, negatives=1))
    direct = [
        guide(guide.preprocess(texts))["sentence_embedding"] for texts in retrieval_rows(n=6, negatives=1).values()
    ]
    for retokenized, reference in zip(loss.guide_embeddings(feats), direct, strict=True):
        torch.testing.assert_close(retokenized, reference)


def test_trainer_logs_statistics_distils_and_writes_the_model_card(model, tmp_path: Path) -> None:
    rows = retrieval_rows(n=16, negatives=2)
    data = datasets.Dataset.from_dict(rows)
    data = data.add_column("scores", torch.randn(16, 3).tolist())
    loss = MarginEmbeddingLoss(model, **ALL_PARTS, distill_weight=0.3)
    args = SentenceTransformerTrainingArguments(
        tmp_path / "out",
        per_device_train_batch_size=8,
        max_steps=4,
        logging_steps=2,
        report_to="none",
        learning_rate=1e-3,
        save_strategy="no",
        seed=0,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
    log_loss_statistics(trainer)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2
    for entry in logged:
        assert 0 <= entry["filtered_share"] <= 1 and 0 < entry["mean_focal_weight"] <= 1
        assert "similarity_gap" in entry
    model.save_pretrained(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "MarginEmbeddingLoss" in card and "2506.20923" in card and '"focal_gamma": 2.0' in card
    reloaded = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    torch.testing.assert_close(reloaded.encode(rows["anchor"][:3]), model.encode(rows["anchor"][:3]))


def test_statistics_are_means_since_the_last_pop(model) -> None:
    feats = features(model, retrieval_rows(n=8, negatives=2))
    loss = MarginEmbeddingLoss(model, filter_strategy="absolute", filter_margin=0.5)
    first, second = loss(feats), loss(feats)
    assert torch.equal(first, second)
    statistics = loss.pop_statistics()
    assert statistics["mean_focal_weight"] == 1.0 and statistics["filtered_share"] > 0
    assert loss.pop_statistics() == {}
    with torch.no_grad():
        loss(feats)
    assert loss.pop_statistics() == {}, "evaluation passes are not counted"


def test_bad_input_gets_a_clear_error(model) -> None:
    pairs = features(model, retrieval_rows(n=4, negatives=0))
    with pytest.raises(ValueError, match="needs \\(anchor, positive"):
        MarginEmbeddingLoss(model)(pairs[:1])
    with pytest.raises(ValueError, match="mixing='pairwise' needs at least 2 hard-negative"):
        MarginEmbeddingLoss(model, mixing="pairwise")(pairs)
    with pytest.raises(ValueError, match="teacher scores of shape"):
        MarginEmbeddingLoss(model, distill_weight=1.0)(features(model, retrieval_rows(n=4, negatives=1)), None)
    mismatched = features(model, retrieval_rows(n=4, negatives=1))
    mismatched[2] = model.preprocess(retrieval_rows(n=3, negatives=0)["anchor"])
    with pytest.raises(ValueError, match=r"documents\[1\]"):
        MarginEmbeddingLoss(model)(mismatched)
    with pytest.raises(ValueError, match="`guide` is only used by the false-negative filter"):
        MarginEmbeddingLoss(model, guide=model)
    with pytest.raises(ValueError, match="`focal_gamma`"):
        MarginEmbeddingLoss(model, focal_gamma=-1)


class _Linear:
    """Stand-in encoder for the multi-process test: embeddings are x @ W."""

    def __init__(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
        self.inputs = [torch.randn(8, 6, generator=g, dtype=torch.float64) for _ in range(3)]


def _gathered_gradient(rank: int, world: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    net = _Linear(0)
    rows = slice(rank * 4, rank * 4 + 4)
    loss = MarginEmbeddingLoss(
        None,
        gather_across_devices=True,
        focal_gamma=2.0,
        filter_strategy="relative",
        mixing="similarity",
        symmetric=True,
    )
    value = loss.compute_loss_from_embeddings([x[rows] @ net.weight for x in net.inputs], None)
    value.backward()
    grad = net.weight.grad / world
    dist.all_reduce(grad)
    queue.put((rank, grad))


def test_gather_across_two_processes_equals_one_process_on_the_whole_batch() -> None:
    net = _Linear(0)
    loss = MarginEmbeddingLoss(None, focal_gamma=2.0, filter_strategy="relative", mixing="similarity", symmetric=True)
    loss.compute_loss_from_embeddings([x @ net.weight for x in net.inputs], None).backward()
    results = run_ranks(_gathered_gradient, timeout=120)
    for rank in range(2):
        torch.testing.assert_close(results[rank], net.weight.grad)


def test_empty_batch_raises_instead_of_a_nan_loss() -> None:
    """#19 item 3: MarginEmbeddingLoss on an empty batch names the empty anchors instead of returning NaN."""
    loss = MarginEmbeddingLoss(None)
    with pytest.raises(ValueError, match=r"`queries`.*empty"):
        loss.compute_loss_from_embeddings([torch.zeros(0, 4), torch.zeros(0, 4)], None)
    with pytest.raises(TypeError, match="`scale`"):
        MarginEmbeddingLoss(None, scale="20")


def test_a_non_finite_batch_leaves_the_logged_statistics_unchanged() -> None:
    """#19 item 1: a NaN batch gives a NaN loss but is left out of the running statistics (masked on the device),
    so the logged means are those of the finite batches."""
    g = torch.Generator().manual_seed(0)
    columns = [torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(3)]
    clean = MarginEmbeddingLoss(None, filter_strategy="absolute", filter_margin=0.5, focal_gamma=2.0)
    mixed = MarginEmbeddingLoss(None, filter_strategy="absolute", filter_margin=0.5, focal_gamma=2.0)
    broken = [c.clone() for c in columns]
    broken[1][2, 0] = float("nan")
    for loss in (clean, mixed):
        loss.compute_loss_from_embeddings(columns, None)
    assert torch.isnan(mixed.compute_loss_from_embeddings(broken, None))
    expected, got = clean.pop_statistics(), mixed.pop_statistics()
    assert got == pytest.approx(expected) and all(math.isfinite(v) for v in got.values())


def test_cached_loss_rejects_a_bad_mini_batch_size(model) -> None:
    """#19 item 5: a wrongly typed or non-positive mini-batch size is named when built, not deep in the first step."""
    with pytest.raises(TypeError, match="`mini_batch_size`"):
        CachedMarginEmbeddingLoss(model, mini_batch_size="32")
    with pytest.raises(ValueError, match="`mini_batch_size`"):
        CachedMarginEmbeddingLoss(model, mini_batch_size=0)


@pytest.mark.parametrize("cached", [False, True])
def test_a_restored_generator_state_continues_the_mixing_draws(model, cached: bool) -> None:
    feats = features(model, retrieval_rows(n=8, negatives=2))

    def loss() -> torch.nn.Module:
        options = {"mixing": "pairwise", "num_mixed": 2, "seed": 3}
        return (
            CachedMarginEmbeddingLoss(model, mini_batch_size=4, **options)
            if cached
            else MarginEmbeddingLoss(model, **options)
        )

    uninterrupted = loss()
    values = [uninterrupted(feats).item() for _ in range(3)]
    assert len(set(values)) == 3, "each call draws new mixing weights"
    interrupted = loss()
    assert interrupted.generator_state() is None and interrupted.owns_generator, "no state before the first draw"
    interrupted(feats)
    resumed = loss()
    resumed.set_generator_state(interrupted.generator_state())
    pending = resumed.generator_state()
    assert pending["device"] == "cpu", "a restored state is kept until the first draw"
    assert torch.equal(pending["state"], interrupted.generator_state()["state"])
    assert [resumed(feats).item() for _ in range(2)] == pytest.approx(values[1:], rel=1e-6)
    unseeded = MarginEmbeddingLoss(model, mixing="pairwise")
    assert unseeded.generator_state() is None and not unseeded.owns_generator, "no own generator without seed"


@pytest.mark.parametrize(
    "state",
    [None, {"state": torch.zeros(16, dtype=torch.uint8)}, {"device": "cpu", "state": torch.zeros(16)}],
    ids=["not a dict", "no device", "not bytes"],
)
def test_a_bad_generator_state_is_an_error_naming_it(model, state) -> None:
    loss = MarginEmbeddingLoss(model, mixing="pairwise", seed=3)
    with pytest.raises(ValueError, match=r"`state` must be a generator_state\(\)"):
        loss.set_generator_state(state)
    assert loss.generator_state() is None, "nothing is kept"


def test_a_generator_state_of_another_device_restarts_from_the_seed(model, caplog) -> None:
    feats = features(model, retrieval_rows(n=8, negatives=2))
    fresh = MarginEmbeddingLoss(model, mixing="pairwise", num_mixed=2, seed=3)(feats).item()
    loss = MarginEmbeddingLoss(model, mixing="pairwise", num_mixed=2, seed=3)
    loss.set_generator_state({"device": "cuda", "state": torch.zeros(16, dtype=torch.uint8)})
    with caplog.at_level("WARNING"):
        assert loss(feats).item() == pytest.approx(fresh, rel=1e-6)
    assert "state is for cuda, the loss now runs on cpu" in caplog.text


def test_checkpoint_loss_generator_needs_a_loss_with_a_generator(model, tmp_path: Path, caplog) -> None:
    from transformers import TrainerState

    from hf_margin.callbacks import checkpoint_loss_generator
    from hf_margin.callbacks.loss_generator import LossGeneratorCallback

    data = datasets.Dataset.from_dict(retrieval_rows(n=4, negatives=0))
    args = SentenceTransformerTrainingArguments(tmp_path / "out", report_to="none", max_steps=1)
    mnrl = MultipleNegativesRankingLoss(model)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=mnrl)
    with pytest.raises(TypeError, match="`loss` must have owns_generator, generator_state"):
        checkpoint_loss_generator(trainer)
    callback = LossGeneratorCallback(MarginEmbeddingLoss(model, mixing="pairwise", seed=0))
    (tmp_path / "out" / "checkpoint-4").mkdir(parents=True)
    with caplog.at_level("WARNING"):
        callback.on_train_begin(args, TrainerState(global_step=4), None)
    assert "no loss_generator.pt" in caplog.text and "restarts from its seed" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # a loss without an own generator has nothing to restore
        LossGeneratorCallback(MarginEmbeddingLoss(model, focal_gamma=2.0)).on_train_begin(
            args, TrainerState(global_step=4), None
        )
    assert not caplog.text


def test_the_generator_is_saved_before_the_checkpoint_counts_as_complete(model, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from transformers import TrainerState

    from hf_margin.callbacks.loss_generator import LossGeneratorCallback

    loss = MarginEmbeddingLoss(model, mixing="pairwise", num_mixed=2, seed=0)
    loss(features(model, retrieval_rows(n=8, negatives=2)))
    args = SentenceTransformerTrainingArguments(tmp_path / "out", report_to="none")
    callback = LossGeneratorCallback(loss)
    callback.on_step_end(args, TrainerState(global_step=3), SimpleNamespace(should_save=False))
    assert not (tmp_path / "out" / "checkpoint-3").exists(), "no save, no file"
    callback.on_step_end(args, TrainerState(global_step=4), SimpleNamespace(should_save=True))
    folder = tmp_path / "out" / "checkpoint-4"
    assert [p.name for p in folder.iterdir()] == ["loss_generator.pt"], "written before the Trainer's files"
    saved = torch.load(folder / "loss_generator.pt", weights_only=True)
    assert saved["device"] == "cpu" and torch.equal(saved["state"], loss.generator_state()["state"])
