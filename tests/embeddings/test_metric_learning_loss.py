"""MetricLearningLoss: hf_margin's pair-based losses as a sentence-transformers loss on (text, label) rows."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
import torch
from sentence_transformers import SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

from hf_margin.embeddings import MetricLearningLoss
from hf_margin.losses import MultiSimilarityLoss, MultiSimilarityMiner, ThresholdConsistentMarginLoss
from tests.embeddings.tiny_st import WORDS, tiny_sentence_transformer


def labelled_rows(n: int = 24) -> dict[str, list]:
    g = torch.Generator().manual_seed(0)
    texts, labels = [], []
    for i in range(n):
        label = i % 4
        words = [WORDS[label]] + [WORDS[int(j)] for j in torch.randint(4, len(WORDS), (3,), generator=g)]
        texts.append(" ".join(words))
        labels.append(label)
    return {"text": texts, "label": labels}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    return tiny_sentence_transformer(tmp_path_factory.mktemp("tiny"))


def test_equals_the_loss_on_the_models_embeddings(model) -> None:
    rows = labelled_rows(12)
    features = model.tokenize(rows["text"])
    labels = torch.tensor(rows["label"])
    miner, loss = MultiSimilarityMiner(), MultiSimilarityLoss()
    wrapped = MetricLearningLoss(model, loss, miner)
    got = wrapped([features], labels)
    embeddings = model(features)["sentence_embedding"]
    expected = loss(embeddings, labels, indices_tuple=miner(embeddings, labels))
    torch.testing.assert_close(got, expected)


def test_trains_under_sentence_transformer_trainer_and_cites_the_papers(model, tmp_path: Path) -> None:
    loss = MetricLearningLoss(model, ThresholdConsistentMarginLoss(base_loss=MultiSimilarityLoss()))
    assert "1904.06627" in loss.citation and "2307.04047" in loss.citation
    args = SentenceTransformerTrainingArguments(
        str(tmp_path / "out"),
        per_device_train_batch_size=12,
        max_steps=3,
        report_to="none",
        learning_rate=1e-2,
        save_strategy="no",
        seed=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=datasets.Dataset.from_dict(labelled_rows()), loss=loss
    )
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert "ThresholdConsistentMarginLoss" in loss.get_config_dict()["loss"]


def test_bad_inputs(model) -> None:
    with pytest.raises(TypeError, match="`loss`"):
        MetricLearningLoss(model, "ms")  # type: ignore[arg-type]
    features = model.tokenize(["red cat", "blue dog"])
    with pytest.raises(ValueError, match="one text column"):
        MetricLearningLoss(model, MultiSimilarityLoss())([features, features], torch.tensor([0, 1]))


@pytest.mark.parametrize(
    "loss",
    [
        MultiSimilarityLoss(),
        ThresholdConsistentMarginLoss(),
        ThresholdConsistentMarginLoss(base_loss=MultiSimilarityLoss()),
    ],
)
def test_citation_is_the_catalogue_entries_bibtex(model, loss) -> None:
    from hf_margin.catalogue import CATALOGUE

    names = {type(loss).__name__, type(getattr(loss, "base_loss", None)).__name__}
    expected = "\n".join(
        f"@misc{{{m.name},\n  title={{{m.title}}},\n  eprint={{{m.arxiv}}},\n  archivePrefix={{arXiv}},\n}}"
        for m in CATALOGUE
        if m.arxiv and m.entry_point.rpartition(".")[2] in names
    )
    assert MetricLearningLoss(model, loss).citation == expected
