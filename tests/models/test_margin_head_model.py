"""MarginHeadModel: any AutoModel backbone with a margin head, through Trainer and save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    BertConfig,
    BertModel,
    ResNetConfig,
    Trainer,
    TrainingArguments,
    ViTConfig,
)

from hf_margin import MarginHeadConfig, MarginHeadModel
from hf_margin.heads import HEAD_TYPES, AdaFaceHead
from tests.checkpointing import enable_activation_checkpointing

VOCAB = 40


def _bert_config(**overrides: object) -> dict:
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config.to_dict()


def _text_model(head_type: str = "arcface", **config_kwargs: object) -> MarginHeadModel:
    config = MarginHeadConfig(backbone_config=_bert_config(), head_type=head_type, **config_kwargs)
    config.num_labels = 4
    return MarginHeadModel(config)


def _text_batch(batch: int = 6, length: int = 7) -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.randint(1, VOCAB, (batch, length)),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "labels": torch.arange(batch) % 4,
    }


@pytest.mark.parametrize("head_type", sorted(HEAD_TYPES))
def test_forward_returns_loss_logits_and_embeddings(head_type: str) -> None:
    model = _text_model(head_type, embedding_size=8)
    batch = _text_batch()
    out = model(**batch)
    assert out.logits.shape == (6, 4) and out.embeddings.shape == (6, 8)
    model.eval()
    with torch.no_grad():
        out = model(**batch)
        torch.testing.assert_close(out.loss, model.head(out.embeddings, batch["labels"]))
        unlabeled = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert unlabeled.loss is None
    torch.testing.assert_close(unlabeled.logits, model.head.get_logits(unlabeled.embeddings))


@pytest.mark.parametrize("pooling", ["mean", "max", "cls", "pooler"])
def test_padding_does_not_change_the_embedding(pooling: str) -> None:
    model = _text_model(pooling=pooling).eval()
    ids = torch.randint(1, VOCAB, (1, 5))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 5), torch.zeros(1, 3)], dim=1).long()
    with torch.no_grad():
        short = model(input_ids=ids, attention_mask=torch.ones(1, 5, dtype=torch.long)).embeddings
        long = model(input_ids=padded, attention_mask=mask).embeddings
    torch.testing.assert_close(short, long, rtol=1e-4, atol=1e-5)


def test_mean_pooling_is_the_masked_mean_of_the_hidden_states() -> None:
    model = _text_model(pooling="mean").eval()
    batch = _text_batch(2, 5)
    batch["attention_mask"][0, 3:] = 0
    with torch.no_grad():
        hidden = model.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    torch.testing.assert_close(out.embeddings[0], hidden.last_hidden_state[0, :3].mean(0))
    torch.testing.assert_close(out.embeddings[1], hidden.last_hidden_state[1].mean(0))


def test_vision_backbones_vit_and_resnet() -> None:
    vit = ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=16, patch_size=8
    )
    resnet = ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], num_channels=3)
    pixels = torch.randn(3, 3, 16, 16)
    for backbone, pooling, width in ((vit, "cls", 16), (resnet, "mean", 12), (resnet, "pooler", 12)):
        config = MarginHeadConfig(backbone_config=backbone.to_dict(), head_type="cosface", pooling=pooling)
        config.num_labels = 5
        out = MarginHeadModel(config)(pixel_values=pixels, labels=torch.tensor([0, 1, 4]))
        assert out.embeddings.shape == (3, width) and torch.isfinite(out.loss)


def test_save_and_load_through_the_auto_classes(tmp_path: Path) -> None:
    model = _text_model("adaface")
    model.train()
    model(**_text_batch())  # moves the AdaFace statistics away from their initial values
    model.eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "margin_head"
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MarginHeadModel) and isinstance(loaded.head, AdaFaceHead)
    batch = _text_batch()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)
    torch.testing.assert_close(loaded.head.batch_mean, model.head.batch_mean)
    assert loaded.head.batch_mean.item() != AdaFaceHead.INITIAL_MEAN


def test_from_backbone_starts_from_the_pretrained_weights(tmp_path: Path) -> None:
    backbone = BertModel(BertConfig(**_bert_config()))
    backbone.save_pretrained(tmp_path)
    model = MarginHeadModel.from_backbone(str(tmp_path), num_labels=3, head_type="cosface", embedding_size=6)
    for name, tensor in backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[name], tensor)
    assert model.config.num_labels == 3 and model.head.weight.shape == (3, 6)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    batch = _text_batch()
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = _text_model()
        model.train()
        if checkpointing:
            enable_activation_checkpointing(model)
        model(**batch).loss.backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    for without, with_ in zip(*grads, strict=True):
        torch.testing.assert_close(without, with_)


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict[str, torch.Tensor]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.rows[index]


def _toy_dataset(n: int = 32) -> _ListDataset:
    """Class k is a sentence made mostly of token k + 1: learnable in a few steps."""
    generator = torch.Generator().manual_seed(0)
    rows = []
    for i in range(n):
        label = i % 4
        ids = torch.full((6,), label + 1)
        ids[torch.randint(0, 6, (2,), generator=generator)] = torch.randint(5, VOCAB, (2,), generator=generator)
        rows.append(
            {"input_ids": ids, "attention_mask": torch.ones(6, dtype=torch.long), "labels": torch.tensor(label)}
        )
    return _ListDataset(rows)


def _train(
    tmp_path: Path, steps: int, batch: int, accumulation: int, lr: float = 0.5, max_grad_norm: float = 1.0
) -> MarginHeadModel:
    torch.manual_seed(0)
    model = _text_model("cosface", head_kwargs={"scale": 16.0})
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=steps,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation,
        learning_rate=lr,
        optim="sgd",
        lr_scheduler_type="constant",
        warmup_steps=0,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        dataloader_drop_last=True,
        max_grad_norm=max_grad_norm,
    )
    Trainer(model=model, args=args, train_dataset=_toy_dataset()).train()
    return model


def test_trains_with_trainer_and_learns(tmp_path: Path) -> None:
    data = _toy_dataset()
    batch = {k: torch.stack([row[k] for row in data.rows]) for k in data.rows[0]}
    torch.manual_seed(0)
    before = _text_model("cosface", head_kwargs={"scale": 16.0})(**batch).loss.item()
    model = _train(tmp_path, steps=30, batch=8, accumulation=1, lr=0.3).eval()
    with torch.no_grad():
        out = model(**batch)
    assert out.loss.item() < 0.5 * before
    assert (out.logits.argmax(1) == batch["labels"]).float().mean() > 0.9


def test_gradient_accumulation_equals_the_bigger_batch(tmp_path: Path) -> None:
    # No clipping: it would hide a wrongly scaled gradient.
    accumulated = _train(tmp_path / "ga", steps=1, batch=4, accumulation=2, max_grad_norm=0.0)
    big = _train(tmp_path / "big", steps=1, batch=8, accumulation=1, max_grad_norm=0.0)
    for (name, p_ga), p_big in zip(accumulated.named_parameters(), big.parameters(), strict=True):
        torch.testing.assert_close(p_ga, p_big, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"head_type": "sphereface"}, "`head_type` must be one of"),
        ({"pooling": "attention"}, "`pooling` must be one of"),
        ({"embedding_size": 0}, "`embedding_size` must be an integer >= 1"),
    ],
)
def test_bad_config_raises_a_clear_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MarginHeadConfig(backbone_config=_bert_config(), **kwargs)


def test_pooler_pooling_needs_a_pooler() -> None:
    config = MarginHeadConfig(backbone_config=_bert_config(add_pooling_layer=False), pooling="pooler")
    model = MarginHeadModel(config)
    model.backbone.pooler = None
    with pytest.raises(ValueError, match="pooling='pooler' needs a backbone that returns `pooler_output`"):
        model(**_text_batch())


def test_head_papers_agree_with_the_catalogue() -> None:
    from hf_margin.catalogue import by_name
    from hf_margin.models.margin_head.model_card import HEAD_PAPERS

    entries = {"combined": "combined_margin"}
    assert set(HEAD_PAPERS) == set(HEAD_TYPES) - {"softmax"}
    for head_type, (method, title, arxiv) in HEAD_PAPERS.items():
        entry = by_name(entries.get(head_type, head_type))
        assert (method, title, arxiv) == (entry.method, entry.title, entry.arxiv)
