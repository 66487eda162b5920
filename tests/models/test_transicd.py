"""TransICDModel: shapes and masks, chunking, losses, save/load, backbones, Trainer + DRW, explanations, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModel, BertConfig, BertModel, PreTrainedTokenizerFast, Trainer, TrainingArguments

from hf_margin import TransICDConfig, TransICDModel
from hf_margin.callbacks import DRWCallback
from hf_margin.metrics import multilabel_compute_metrics
from hf_margin.models.transicd import explain_note, explanation_html, plot_explanation

CODES = ["A00", "B20", "J45"]
WORDS = ["[PAD]", "[UNK]", "cough", "fever", "asthma", "wheeze", "cholera", "diarrhoea", "hiv", "rash", "and"]


def tiny_config(**kwargs) -> TransICDConfig:
    options = {
        "id2label": dict(enumerate(CODES)),
        "label_counts": [50, 5, 0],
        "vocab_size": len(WORDS),
        "hidden_size": 16,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "dropout": 0.0,
    }
    return TransICDConfig(**(options | kwargs))


def batch(length: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, len(WORDS), (3, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, length // 2 :] = 0
    ids[1, length // 2 :] = 0
    return ids, mask


def test_shapes_and_padding_get_no_attention() -> None:
    model = TransICDModel(tiny_config()).eval()
    ids, mask = batch()
    out = model(ids, mask)
    assert out.logits.shape == (3, 3) and out.attentions.shape == (3, 3, 12)
    assert float(out.attentions[1, :, 6:].abs().max()) == 0.0
    torch.testing.assert_close(out.attentions.sum(-1), torch.ones(3, 3))


def test_long_notes_are_chunked_and_attended_as_one_sequence() -> None:
    model = TransICDModel(tiny_config(chunk_size=5)).eval()
    ids, mask = batch(length=13)
    hidden = model.encode(ids, mask)
    windows = [model.backbone(ids[:, i : i + 5], mask[:, i : i + 5]) for i in range(0, 13, 5)]
    expected = torch.cat(windows, dim=1)
    torch.testing.assert_close(hidden[0], expected[0])
    torch.testing.assert_close(hidden[1, :5], expected[1, :5])
    out = model(ids, mask)
    assert out.attentions.shape == (3, 3, 13) and (out.attentions[0, :, 10:] > 0).all(), "the last window counts"


def test_positions_matter_in_the_own_encoder() -> None:
    """The official code's bug gave every token of a sample the same position; ours does not."""
    model = TransICDModel(tiny_config()).eval()
    ids = torch.tensor([[2, 3, 4, 5]])
    assert not torch.allclose(model(ids).logits, model(ids.flip(1)).logits)


def test_ldam_and_bce_losses() -> None:
    ids, mask = batch()
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    bce = TransICDModel(tiny_config(loss="bce")).eval()
    out = bce(ids, mask, labels=labels)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, labels.float()))
    ldam = TransICDModel(tiny_config(loss="ldam", ldam_c=3.0)).eval()
    weights = {k: v for k, v in bce.state_dict().items() if not k.startswith("loss_fct.")}
    ldam.load_state_dict(weights, strict=False)
    torch.testing.assert_close(ldam(ids, mask).logits, out.logits)
    assert ldam(ids, mask, labels=labels).loss > out.loss, "margins make positives harder"


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = TransICDModel(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    ids, mask = batch()
    assert isinstance(loaded, TransICDModel) and loaded.label_names == CODES
    torch.testing.assert_close(loaded(ids, mask).logits, model(ids, mask).logits)
    torch.testing.assert_close(loaded.loss_fct.margins, model.loss_fct.margins)


def test_pretrained_backbone_and_mean_pooling(tmp_path: Path) -> None:
    config = BertConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=8,
    )
    BertModel(config).save_pretrained(tmp_path / "bert")
    model = TransICDModel.from_backbone(str(tmp_path / "bert"), CODES, [50, 5, 0]).eval()
    reference = BertModel.from_pretrained(tmp_path / "bert").eval()
    ids, mask = batch(length=20)
    hidden = model.encode(ids, mask)
    torch.testing.assert_close(hidden[0, :8], reference(ids[:1, :8]).last_hidden_state[0])
    assert model.config.chunk_size is None and model._chunk_size(20) == 8, "the backbone's max length"
    mean = TransICDModel(tiny_config(pooling="mean")).eval()
    out = mean(*batch())
    assert out.attentions is None and out.logits.shape == (3, 3)


def test_trainer_with_drw_and_metrics(tmp_path: Path) -> None:
    from datasets import Dataset

    ids, mask = batch(length=8)
    rows = {
        "input_ids": ids.repeat(4, 1).tolist(),
        "attention_mask": mask.repeat(4, 1).tolist(),
        "labels": [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]] * 4,
    }
    model = TransICDModel(tiny_config())
    drw = DRWCallback(model.loss_fct, switch_epoch=1, beta=0.999)
    seen: list[list[float]] = []

    class Record(DRWCallback):
        def on_epoch_begin(self, *args, **kwargs) -> None:
            seen.append(model.loss_fct.class_weights.tolist())

    args = TrainingArguments(
        tmp_path,
        num_train_epochs=2,
        per_device_train_batch_size=4,
        report_to="none",
        save_strategy="no",
        eval_strategy="epoch",
        learning_rate=1e-2,
        use_cpu=True,
    )
    trainer = Trainer(
        model,
        args,
        train_dataset=Dataset.from_dict(rows),
        eval_dataset=Dataset.from_dict(rows),
        compute_metrics=multilabel_compute_metrics(k=2, tuned=True),
        callbacks=[drw],
    )
    trainer.add_callback(Record(model.loss_fct, 0))
    trainer.train()
    assert seen[0] == [1.0, 1.0, 1.0]
    assert sum(seen[1]) == pytest.approx(3.0) and seen[1][2] > seen[1][1] > seen[1][0]
    metrics = trainer.evaluate()
    assert {"eval_micro_auc", "eval_macro_f1", "eval_precision_at_2", "eval_micro_f1_tuned"} <= set(metrics)
    ragged = Dataset.from_dict({"input_ids": [[2, 3], [4, 5, 6, 7]], "labels": [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]})
    trainer.args.per_device_eval_batch_size = 1
    prediction = trainer.predict(ragged)  # batches of different lengths: attentions are not gathered
    assert prediction.predictions.shape == (2, 3)


def test_explanations(tmp_path: Path) -> None:
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")
    model = TransICDModel(tiny_config())
    explanation = explain_note(model, tokenizer, "cough and wheeze and asthma", top_codes=2, top_tokens=3)
    assert explanation.tokens == ["cough", "and", "wheeze", "and", "asthma"]
    assert len(explanation.codes) == 2 and explanation.codes[0].probability >= explanation.codes[1].probability
    first = explanation.codes[0]
    assert [w for _, w in first.top_tokens] == sorted(first.weights, reverse=True)[:3]
    page = explanation_html(explanation)
    assert page.count("<span") == 10 and first.code in page
    assert plot_explanation(explanation, tmp_path / "why.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="pooling='mean'"):
        explain_note(TransICDModel(tiny_config(pooling="mean")), tokenizer, "cough")


def test_bad_input_and_config_errors() -> None:
    model = TransICDModel(tiny_config())
    ids, mask = batch()
    with pytest.raises(ValueError, match=r"`labels` must be a \(batch, num_labels\) = \(batch, 3\)"):
        model(ids, mask, labels=torch.zeros(3, 4))
    with pytest.raises(ValueError, match="only 0 and 1"):
        model(ids, mask, labels=torch.full((3, 3), 2.0))
    with pytest.raises(ValueError, match="needs `label_counts`"):
        TransICDModel(tiny_config(label_counts=None))
    with pytest.raises(ValueError, match="`label_counts` needs one count per label"):
        tiny_config(label_counts=[1, 2])
    with pytest.raises(ValueError, match="`pooling`"):
        tiny_config(pooling="max")


def test_vectorised_head_equals_the_per_label_loop_of_the_benchmark() -> None:
    from benchmarks.bench_transicd import chunks_kept_by_autograd, per_label_loop
    from hf_margin.models.transicd import CodeWiseAttention

    head = CodeWiseAttention(8, 5).double()
    hidden = torch.randn(2, 7, 8, dtype=torch.float64)
    mask = torch.ones(2, 7)
    mask[1, 4:] = 0
    loop = per_label_loop(head, hidden, mask)
    torch.testing.assert_close(head(hidden, mask)[0], loop)
    torch.testing.assert_close(per_label_loop(head, hidden, mask, labels=3), loop[:, :3])
    chunked = CodeWiseAttention(8, 5, label_chunk_size=2).double()
    chunked.load_state_dict(head.state_dict())
    torch.testing.assert_close(chunked(hidden, mask)[0], loop)
    torch.testing.assert_close(chunks_kept_by_autograd(chunked, hidden, mask), loop)
