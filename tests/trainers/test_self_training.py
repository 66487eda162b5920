"""SelfTrainingLoop (arXiv 2202.12040): margins by hand, nothing accepted = the labelled-only baseline, threshold 0
accepts everything, pseudo-label accuracy bookkeeping by hand, per-round checkpoints, share curriculum, errors."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from hf_margin.trainers._pseudo_labels import prediction_margins, share_threshold
from hf_margin.trainers.self_training import HISTORY_NAME, SelfTrainingConfig, SelfTrainingLoop


class Linear(nn.Module):
    """A linear classifier that returns the CE loss when given labels (as transformers models do)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(2, 2)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.net(features)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class Identity(nn.Module):
    """Logits = features (times a scale that a zero learning rate keeps at 1): margins known by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = features * self.scale
        return {"logits": logits, "loss": nn.functional.cross_entropy(logits, labels) if labels is not None else None}


def _blobs(rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(rows) % 2
    x = torch.randn(rows, 2, generator=g) * 0.7 + (y[:, None] * 2 - 1) * torch.tensor([1.5, 0.5])
    return x, y


def _data(labelled_rows: int = 8, unlabelled_rows: int = 24) -> tuple[datasets.Dataset, datasets.Dataset]:
    x, y = _blobs(labelled_rows, 0)
    u, t = _blobs(unlabelled_rows, 1)
    labelled = datasets.Dataset.from_dict({"features": x.tolist(), "labels": y.tolist()})
    unlabelled = datasets.Dataset.from_dict({"features": u.tolist(), "hidden_label": t.tolist()})
    return labelled, unlabelled


def _args(path: Path, learning_rate: float = 0.1, steps: int = 6) -> TrainingArguments:
    return TrainingArguments(
        str(path),
        max_steps=steps,
        per_device_train_batch_size=4,
        learning_rate=learning_rate,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        data_seed=0,
    )


def test_margins_by_hand() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    predictions, margins = prediction_margins(logits)
    p = torch.softmax(logits, dim=1)
    assert predictions.tolist()[:2] == [0, 2]
    assert torch.allclose(margins, torch.stack([p[0, 0] - p[0, 1], p[1, 2] - p[1, 1], p[2, 0] - p[2, 1]]))
    assert margins[2] == 0, "a tie has margin 0"
    assert prediction_margins(logits, "logits")[1].tolist() == [2.0, 2.0, 0.0]
    binary = torch.tensor([[-2.0], [0.5]])
    predictions, margins = prediction_margins(binary)
    assert predictions.tolist() == [0, 1]
    assert torch.allclose(margins, (2 * torch.sigmoid(binary[:, 0]) - 1).abs())
    assert prediction_margins(binary, "logits")[1].tolist() == [2.0, 0.5]
    huge = prediction_margins(torch.tensor([[1e30, -1e30], [1e30, 1e30]]))[1]
    assert torch.isfinite(huge).all() and huge.tolist() == [1.0, 0.0]


def test_share_threshold_accepts_the_top_share() -> None:
    margins = torch.tensor([0.1, 0.9, 0.5, 0.3, 0.7])
    assert share_threshold(margins, 0.4) == pytest.approx(0.7)
    assert share_threshold(margins, 0.41) == pytest.approx(0.5)  # ceil(0.41 * 5) = 3 rows
    assert share_threshold(margins, 1.0) == pytest.approx(0.1)
    counts = [int((margins >= share_threshold(margins, s)).sum()) for s in (0.2, 0.4, 0.6, 0.8, 1.0)]
    assert counts == [1, 2, 3, 4, 5]


def test_threshold_above_every_margin_equals_the_labelled_only_baseline(tmp_path: Path) -> None:
    labelled, unlabelled = _data()
    baseline = Trainer(model_init=Linear, args=_args(tmp_path / "baseline"), train_dataset=labelled)
    baseline.train()
    config = SelfTrainingConfig(rounds=2, threshold=1e6, score="logits")
    result = SelfTrainingLoop(_args(tmp_path / "loop"), labelled, unlabelled, config, model_init=Linear).run()
    assert [r.accepted for r in result.history] == [0] and result.history[0].unlabelled_left == len(unlabelled)
    assert baseline.model is not None
    for ours, theirs in zip(result.model.parameters(), baseline.model.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_threshold_zero_accepts_everything(tmp_path: Path) -> None:
    labelled, unlabelled = _data()
    config = SelfTrainingConfig(rounds=3, threshold=0.0)
    result = SelfTrainingLoop(_args(tmp_path), labelled, unlabelled, config, model_init=Linear).run()
    assert len(result.history) == 2, "nothing is left after round 1, so the loop stops"
    record = result.history[1]
    assert record.accepted == record.pseudo_labelled == len(unlabelled) and record.unlabelled_left == 0
    assert record.train_rows == len(labelled) + len(unlabelled) and record.threshold == 0.0
    assert record.pseudo_label_accuracy is not None and 0.0 <= record.pseudo_label_accuracy <= 1.0


def test_pseudo_label_bookkeeping_by_hand_and_checkpoints(tmp_path: Path) -> None:
    labelled = datasets.Dataset.from_dict({"features": [[1.0, 0.0], [0.0, 1.0]], "labels": [0, 1]})
    # logits = features: predictions 0, 1, 0, 0; logit margins 3, 3, 0.2, 1; true labels 0, 0, 0, 1
    unlabelled = datasets.Dataset.from_dict(
        {"features": [[3.0, 0.0], [0.0, 3.0], [0.2, 0.0], [1.0, 0.0]], "hidden_label": [0, 0, 0, 1]}
    )
    config = SelfTrainingConfig(rounds=3, threshold=(0.5, 0.1, 0.0), score="logits")
    args = _args(tmp_path, learning_rate=0.0, steps=1)
    result = SelfTrainingLoop(
        args, labelled, unlabelled, config, model=Identity(), evaluate=lambda m: {"scale": float(m.scale.detach())}
    ).run()
    first, second = result.history[1], result.history[2]
    assert (first.accepted, first.accepted_accuracy, first.pseudo_label_accuracy) == (3, 1 / 3, 1 / 3)
    assert (second.accepted, second.accepted_accuracy, second.pseudo_label_accuracy) == (1, 1.0, 2 / 4)
    assert [r.train_rows for r in result.history] == [2, 5, 6] and second.unlabelled_left == 0
    assert [r.metrics for r in result.history] == [{"scale": 1.0}] * 3
    for record in result.history:
        assert (Path(record.checkpoint) / "model.safetensors").is_file()
        assert Path(record.checkpoint).name == f"round-{record.round}"
    saved = json.loads((tmp_path / HISTORY_NAME).read_text())
    assert [r["accepted"] for r in saved] == [0, 3, 1]


def test_share_curriculum_and_no_hidden_labels(tmp_path: Path) -> None:
    labelled = datasets.Dataset.from_dict({"features": [[1.0, 0.0], [0.0, 1.0]], "labels": [0, 1]})
    unlabelled = datasets.Dataset.from_dict({"features": [[3.0, 0.0], [0.0, 2.0], [0.2, 0.0], [1.0, 0.0]]})
    config = SelfTrainingConfig(rounds=2, accept_share=(0.5, 1.0), score="logits")
    result = SelfTrainingLoop(
        _args(tmp_path, learning_rate=0.0, steps=1), labelled, unlabelled, config, model=Identity()
    ).run()
    assert [(r.accepted, r.threshold) for r in result.history[1:]] == [(2, 2.0), (2, pytest.approx(0.2))]
    assert result.history[1].pseudo_label_accuracy is None


def test_any_transformers_classifier(tmp_path: Path) -> None:
    def init() -> BertForSequenceClassification:
        config = BertConfig(
            vocab_size=20,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
            max_position_embeddings=8,
            num_labels=3,
        )
        return BertForSequenceClassification(config)

    ids = torch.randint(0, 20, (10, 4), generator=torch.Generator().manual_seed(0)).tolist()
    labelled = datasets.Dataset.from_dict({"input_ids": ids[:4], "labels": [0, 1, 2, 0]})
    unlabelled = datasets.Dataset.from_dict({"input_ids": ids[4:], "hidden_label": [0, 1, 2, 0, 1, 2]})
    config = SelfTrainingConfig(rounds=1, threshold=0.0)
    result = SelfTrainingLoop(_args(tmp_path, steps=2), labelled, unlabelled, config, model_init=init).run()
    assert result.history[1].accepted == 6 and isinstance(result.model, BertForSequenceClassification)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threshold": -0.1}, "`threshold` must lie in"),
        ({"threshold": 1.5}, "`threshold` must lie in"),
        ({"threshold": float("nan")}, "`threshold` must lie in"),
        ({"threshold": float("inf"), "score": "logits"}, "`threshold` must be finite"),
        ({"threshold": (0.5, 0.6)}, "one value per round"),
        ({"accept_share": 0.0}, "`accept_share` must lie in"),
        ({"accept_share": 1.5}, "`accept_share` must lie in"),
        ({"score": "ranks"}, "`score` must be one of"),
        ({"rounds": 0}, "`rounds` must be an integer"),
    ],
)
def test_bad_config(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelfTrainingConfig(**options)  # type: ignore[arg-type]


def test_bad_threshold_type() -> None:
    with pytest.raises(TypeError, match="`threshold` must be a float"):
        SelfTrainingConfig(threshold="high")  # type: ignore[arg-type]


def test_bad_loop_inputs(tmp_path: Path) -> None:
    labelled, unlabelled = _data()
    args = _args(tmp_path)
    with pytest.raises(ValueError, match="exactly one of `model`"):
        SelfTrainingLoop(args, labelled, unlabelled, model=Linear(), model_init=Linear)
    with pytest.raises(ValueError, match="exactly one of `model`"):
        SelfTrainingLoop(args, labelled, unlabelled)
    with pytest.raises(ValueError, match="`unlabelled` must not have the label column"):
        SelfTrainingLoop(args, labelled, labelled, model_init=Linear)
    with pytest.raises(ValueError, match="`labelled` must have the label column"):
        SelfTrainingLoop(args, unlabelled, unlabelled, model_init=Linear)
    with pytest.raises(ValueError, match="`unlabelled` must have the columns"):
        SelfTrainingLoop(args, labelled, unlabelled.rename_column("features", "x"), model_init=Linear)
    with pytest.raises(TypeError, match=r"`labelled` must be a datasets\.Dataset"):
        SelfTrainingLoop(args, {"features": []}, unlabelled, model_init=Linear)
    with pytest.raises(ValueError, match="`logits` must be a floating tensor"):
        prediction_margins(torch.tensor([1, 2]))
