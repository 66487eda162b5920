"""ClassificationLossTrainer: catalogue losses on a classifier under Trainer; sample-weight and index columns,
gradient accumulation, the loss's parameters trained and its state checkpointed and resumed, positive-share
batches, a transformers sequence classifier, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from torch import nn

from hf_margin.data.samplers import PositiveShareSampler
from hf_margin.functional.focal import focal_loss
from hf_margin.losses import ALDRKLLoss, FocalLoss, LDRKLLoss
from hf_margin.trainers import ClassificationLossArguments, ClassificationLossTrainer


class Classifier(nn.Module):
    def __init__(self, classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.linear = nn.Linear(4, classes)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.linear(features)}


class ShiftedFocal(nn.Module):
    """A loss with a trainable parameter (like AUC-M's a, b, alpha): focal loss of logits + bias."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits + self.bias, labels, gamma=1.0)


def rows(n: int = 16, seed: int = 0, classes: int = 3) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    return Dataset.from_dict(
        {
            "features": torch.randn(n, 4, generator=g).tolist(),
            "labels": torch.randint(classes, (n,), generator=g).tolist(),
            "sample_weight": torch.rand(n, generator=g).add(0.5).tolist(),
            "index": list(range(n)),
        }
    )


def arguments(folder: Path, **kwargs) -> ClassificationLossArguments:
    options = {
        "per_device_train_batch_size": 8,
        "max_steps": 2,
        "learning_rate": 0.5,
        "optim": "sgd",
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "seed": 0,
        "lr_scheduler_type": "constant",
        "disable_tqdm": True,
    }
    return ClassificationLossArguments(str(folder), **(options | kwargs))


def train(loss: nn.Module, folder: Path, data: Dataset | None = None, **kwargs) -> tuple[nn.Module, nn.Module]:
    model = Classifier()
    ClassificationLossTrainer(model, arguments(folder, **kwargs), loss=loss, train_dataset=data or rows()).train()
    return model, loss


def test_weighted_loss_matches_a_hand_step_and_accumulation_matches_the_bigger_batch(tmp_path: Path) -> None:
    from hf_margin.losses.equity import add_equity_weights

    data = add_equity_weights(
        rows(8).remove_columns("sample_weight"), torch.tensor, "features", reducer="none", eps=2.0, min_samples=2
    )
    assert len(set(data["sample_weight"])) > 1, "DatasetEquity weights differ between rows"
    model, _ = train(FocalLoss(gamma=2.0), tmp_path / "big", data, max_steps=1)
    by_hand = Classifier()
    batch = data.with_format("torch")[:]
    focal_loss(
        by_hand(batch["features"])["logits"], batch["labels"], 2.0, sample_weight=batch["sample_weight"]
    ).backward()
    torch.testing.assert_close(model.linear.weight, by_hand.linear.weight - 0.5 * by_hand.linear.weight.grad)
    accumulated, _ = train(
        FocalLoss(gamma=2.0),
        tmp_path / "ga",
        data,
        max_steps=1,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
    )
    torch.testing.assert_close(accumulated.linear.weight, model.linear.weight)


def test_loss_parameters_are_trained_saved_and_resumed(tmp_path: Path) -> None:
    options = {"max_steps": 4, "per_device_train_batch_size": 4}
    data = rows().remove_columns("sample_weight")
    straight_model, straight_loss = train(ShiftedFocal(), tmp_path / "straight", data, **options)
    assert straight_loss.bias.abs().sum() > 0, "the loss's parameter is in the optimizer"
    first = ClassificationLossTrainer(
        Classifier(),
        arguments(tmp_path / "resumed", save_strategy="steps", save_steps=2, **options),
        loss=ShiftedFocal(),
        train_dataset=data,
    )
    first.args.max_steps = 2
    first.train()
    assert (tmp_path / "resumed" / "checkpoint-2" / "loss_state.pt").is_file()
    model, loss = Classifier(), ShiftedFocal()
    second = ClassificationLossTrainer(model, arguments(tmp_path / "resumed", **options), loss=loss, train_dataset=data)
    second.train(resume_from_checkpoint=str(tmp_path / "resumed" / "checkpoint-2"))
    torch.testing.assert_close(loss.bias, straight_loss.bias)
    torch.testing.assert_close(model.linear.weight, straight_model.linear.weight)


def test_aldr_lambdas_follow_the_index_column_and_survive_resume(tmp_path: Path) -> None:
    options = {"max_steps": 4, "per_device_train_batch_size": 4}
    _, straight = train(ALDRKLLoss(num_examples=16), tmp_path / "straight", **options)
    assert (straight.lambdas < 10).all(), "every row was seen once (4 x 4 = 16) and its lambda updated"
    first = ClassificationLossTrainer(
        Classifier(),
        arguments(tmp_path / "resumed", save_strategy="steps", save_steps=2, **options),
        loss=ALDRKLLoss(16),
        train_dataset=rows(),
    )
    first.args.max_steps = 2
    first.train()
    resumed = ALDRKLLoss(num_examples=16)
    second = ClassificationLossTrainer(
        Classifier(), arguments(tmp_path / "resumed", **options), loss=resumed, train_dataset=rows()
    )
    second.train(resume_from_checkpoint=str(tmp_path / "resumed" / "checkpoint-2"))
    torch.testing.assert_close(resumed.lambdas, straight.lambdas)


def test_positive_share_batches(tmp_path: Path) -> None:
    labels = [1] * 5 + [0] * 95
    sampler = PositiveShareSampler(labels, batch_size=10, positive_share=0.3, seed=1)
    order = list(sampler)
    assert len(order) == len(sampler) == 14 * 10
    batches = [order[i : i + 10] for i in range(0, len(order), 10)]
    assert all(sum(labels[i] for i in b) == 3 for b in batches)
    assert set(order) == set(range(100)), "every negative once, positives recycled"
    binary = rows(40, classes=2)
    trainer = ClassificationLossTrainer(
        Classifier(2), arguments(tmp_path, positive_share=0.5), loss=LDRKLLoss(), train_dataset=binary
    )
    batch = next(iter(trainer.get_train_dataloader()))
    assert int(batch["labels"].sum()) == 4
    with pytest.raises(ValueError, match="`positive_share`"):
        arguments(tmp_path, positive_share=1.0)
    with pytest.raises(ValueError, match="both classes"):
        PositiveShareSampler([0, 0, 0], batch_size=2, positive_share=0.5)


def test_sequence_classifier_from_transformers(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    from tests.trainers.tiny_lm import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = BertForSequenceClassification(config)
    texts = ["the cat sat", "a dog ran far", "the bird", "cat and dog"] * 2
    data = Dataset.from_dict({**tokenizer(texts, padding="max_length", max_length=8), "labels": [0, 1, 2, 1] * 2})
    before = [p.detach().clone() for p in model.parameters()]
    trainer = ClassificationLossTrainer(model, arguments(tmp_path), loss=LDRKLLoss(lam=1.0), train_dataset=data)
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="`loss`"):
        ClassificationLossTrainer(Classifier(), arguments(tmp_path), loss=None, train_dataset=rows())
    with pytest.raises(ValueError, match="takes no `sample_weight`"):
        train(ShiftedFocal(), tmp_path / "w")
    with pytest.raises(ValueError, match="needs example indices"):
        train(ALDRKLLoss(16), tmp_path / "i", rows().remove_columns("index"))


def test_auc_margin_min_max_under_trainer(tmp_path: Path) -> None:
    """AUC-M's a and b descend, alpha ascends (gradient reversal) and stays >= 0 (projected after each step)."""
    from hf_margin.functional.auc_margin import auc_margin_loss
    from hf_margin.losses import AUCMarginLoss

    data = rows(32, classes=2).remove_columns("sample_weight")
    loss = AUCMarginLoss(margin=1.0, score_type="logits")
    model = Classifier(1)
    args = arguments(tmp_path, max_steps=1, positive_share=0.25, save_strategy="steps", save_steps=1)
    trainer = ClassificationLossTrainer(model, args, loss=loss, train_dataset=data)
    batch = next(iter(trainer.get_train_dataloader()))
    probe = [torch.zeros(1, requires_grad=True) for _ in range(3)]
    start = Classifier(1)
    auc_margin_loss(
        start(batch["features"])["logits"].detach(), batch["labels"], *probe, score_type="logits"
    ).backward()
    trainer.train()
    grad_a, grad_b, grad_alpha = (p.grad for p in probe)
    torch.testing.assert_close(loss.a.detach(), -0.5 * grad_a)
    torch.testing.assert_close(loss.b.detach(), -0.5 * grad_b)
    torch.testing.assert_close(loss.alpha.detach(), (0.5 * grad_alpha).clamp_min(0.0))
    assert float(loss.alpha.detach()) > 0, "the margin term pushes alpha up from 0"
    saved = torch.load(tmp_path / "checkpoint-1" / "loss_state.pt", weights_only=True)
    assert set(saved) == {"a", "b", "alpha"}


class TensorClassifier(Classifier):
    """The same classifier returning a bare logits tensor (no dict / ModelOutput)."""

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        return self.linear(features)


def test_a_model_returning_a_bare_tensor_trains_like_one_returning_a_dict(tmp_path: Path) -> None:
    data = rows().remove_columns(["sample_weight", "index"])
    model, _ = train(FocalLoss(gamma=1.0), tmp_path / "dict", data)
    bare = TensorClassifier()
    ClassificationLossTrainer(bare, arguments(tmp_path / "bare"), loss=FocalLoss(gamma=1.0), train_dataset=data).train()
    torch.testing.assert_close(bare.linear.weight, model.linear.weight)
    assert not torch.equal(model.linear.weight, Classifier().linear.weight)


class _TwoProcesses:
    """An accelerator stand-in for process 0 of 2, whose partner's batch is `other` (indices) with `values`: gather
    concatenates this process's tensor and the partner's, both padded to one length as accelerate pads them."""

    num_processes = 2

    def __init__(self, other: torch.Tensor, values: torch.Tensor) -> None:
        self.partner = [other, values]

    def pad_across_processes(self, tensor: torch.Tensor, pad_index: int = 0) -> torch.Tensor:
        self.pad_index = pad_index
        return nn.functional.pad(tensor, (0, 3 - tensor.numel()), value=pad_index)

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        partner = self.partner.pop(0)
        return torch.cat([tensor, nn.functional.pad(partner, (0, 3 - partner.numel()), value=self.pad_index)])


def test_per_example_buffers_take_every_process_updates_and_skip_the_padding(tmp_path: Path) -> None:
    """ALDR-KL's lambdas under 2 processes: this process's rows keep its own update, the partner's rows (a shorter
    batch, padded with index -1) take the partner's values, and no other row changes (the padding writes nothing)."""
    loss = ALDRKLLoss(num_examples=8)
    trainer = ClassificationLossTrainer(Classifier(), arguments(tmp_path), loss=loss, train_dataset=rows())
    loss.lambdas[torch.tensor([0, 1, 2])] = torch.tensor([7.0, 8.0, 9.0])  # this process's update of its rows
    trainer.accelerator = _TwoProcesses(torch.tensor([5, 6]), torch.tensor([5.5, 6.5]))  # the partner
    trainer._share_per_example_state(torch.tensor([0, 1, 2]))
    expected = torch.tensor([7.0, 8.0, 9.0, 10.0, 10.0, 5.5, 6.5, 10.0])
    torch.testing.assert_close(loss.lambdas, expected)
