"""Device-ready core tests: heads, losses, metrics and one Trainer step on `--device` (cpu by default).

`pytest --device cuda tests/test_device.py tests/fuzz` (or HF_MARGIN_TEST_DEVICE=cuda) runs them on a GPU and
skips them cleanly where none is present (the `device` fixture in tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, Trainer, TrainingArguments

from hf_margin import MarginHeadConfig, MarginHeadModel
from hf_margin.heads import HEAD_TYPES, AdaFaceHead, build_head
from hf_margin.losses import ALDRKLLoss, FocalLoss, LDAMLoss, MultiSimilarityLoss
from hf_margin.metrics import retrieval_metrics, tar_at_far, verification_accuracy


@pytest.mark.parametrize("head_type", sorted(HEAD_TYPES))
def test_head_runs_on_the_device_with_finite_loss_and_gradients(head_type: str, device: str) -> None:
    head = build_head(head_type, 8, 5).to(device)
    embeddings = torch.randn(6, 8, device=device, requires_grad=True)
    loss = head(embeddings, torch.arange(6, device=device) % 5)
    loss.backward()
    assert loss.device.type == torch.device(device).type
    assert torch.isfinite(loss)
    assert embeddings.grad is not None and torch.isfinite(embeddings.grad).all()
    assert all(p.device.type == torch.device(device).type for p in head.parameters())


@pytest.mark.parametrize(
    "loss_fn",
    [
        lambda: FocalLoss(gamma=2.0),
        lambda: LDAMLoss([50, 10, 5, 2, 1]),
        lambda: ALDRKLLoss(num_examples=16),
    ],
    ids=["focal", "ldam", "aldr_kl"],
)
def test_classification_loss_runs_on_the_device(loss_fn, device: str) -> None:  # type: ignore[no-untyped-def]
    loss_module = loss_fn().to(device)
    logits = torch.randn(6, 5, device=device, requires_grad=True)
    labels = torch.arange(6, device=device) % 5
    extra = {"indices": torch.arange(6, device=device)} if isinstance(loss_module, ALDRKLLoss) else {}
    loss = loss_module(logits, labels, **extra)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None and torch.isfinite(logits.grad).all()


def test_metric_learning_loss_runs_on_the_device(device: str) -> None:
    embeddings = torch.randn(8, 4, device=device, requires_grad=True)
    loss = MultiSimilarityLoss()(embeddings, torch.arange(8, device=device) % 3)
    loss.backward()
    assert torch.isfinite(loss) and embeddings.grad is not None and torch.isfinite(embeddings.grad).all()


def test_stateful_head_keeps_its_state_on_a_non_finite_batch_on_the_device(device: str) -> None:
    head = AdaFaceHead(4, 3).to(device)
    head(torch.randn(5, 4, device=device), torch.arange(5, device=device) % 3)
    before = {k: v.clone() for k, v in head.state_dict().items()}
    poisoned = torch.randn(5, 4, device=device)
    poisoned[1, 2] = float("nan")
    head(poisoned, torch.arange(5, device=device) % 3)
    for key, value in head.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=f"AdaFaceHead.{key} changed by a NaN batch")


def test_metrics_accept_tensors_on_the_device(device: str) -> None:
    embeddings = torch.nn.functional.normalize(torch.randn(12, 4, device=device), dim=1)
    labels = torch.arange(12, device=device) % 3
    figures = retrieval_metrics(embeddings, labels)
    assert 0.0 <= figures["R@1"] <= 1.0
    scores = torch.linspace(-1, 1, 20, device=device)
    is_same = torch.arange(20, device=device) >= 10
    assert 0.0 <= tar_at_far(scores, is_same, far=0.1) <= 1.0
    accuracy, _ = verification_accuracy(scores, is_same, folds=2)
    assert 0.5 <= accuracy <= 1.0  # separable scores; the threshold is tuned on the other fold


class _Rows(torch.utils.data.Dataset):
    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.input_ids = torch.randint(1, 40, (8, 6), generator=generator)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids[index],
            "attention_mask": torch.ones(6, dtype=torch.long),
            "labels": torch.tensor(index % 3),
        }


def test_one_trainer_step_of_a_margin_head_model_on_the_device(device: str, tmp_path: Path) -> None:
    backbone = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    config = MarginHeadConfig(backbone_config=backbone.to_dict(), head_type="arcface", embedding_size=8)
    config.num_labels = 3
    model = MarginHeadModel(config)
    before = model.head.weight.detach().clone()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        use_cpu=device == "cpu",
        optim="sgd",
    )
    result = Trainer(model=model, args=args, train_dataset=_Rows()).train()
    assert model.head.weight.device.type == torch.device(device).type
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert not torch.equal(model.head.weight.detach().cpu(), before.cpu()), "one step should move the head"
