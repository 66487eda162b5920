"""TransICDModel with label-chunked code-wise attention: the LDAM loss and every gradient equal the one-pass model's
(float64, bf16 autocast), the config's chunk settings (saved, loaded, validated), attentions only when asked or
when they fit, and top-k codes / explanations with the one-pass model's attention maps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from hf_margin import TransICDConfig, TransICDModel
from hf_margin.models.transicd import explain_note

WORDS = ["[PAD]", "[UNK]", "cough", "fever", "asthma", "wheeze", "cholera", "diarrhoea", "hiv", "rash", "and"]
NUM_LABELS = 7


def config(**kwargs) -> TransICDConfig:
    options = {
        "id2label": {i: f"C{i:02d}" for i in range(NUM_LABELS)},
        "label_counts": [50, 5, 0, 12, 1, 300, 7],
        "vocab_size": len(WORDS),
        "hidden_size": 8,
        "num_attention_heads": 2,
        "intermediate_size": 16,
        "dropout": 0.0,
    }
    return TransICDConfig(**(options | kwargs))


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, len(WORDS), (3, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    ids[1, 6:] = 0
    labels = (torch.rand(3, NUM_LABELS, generator=g) < 0.4).float()
    return ids, mask, labels


def twin_models(dtype: torch.dtype, **chunked: object) -> tuple[TransICDModel, TransICDModel]:
    """A one-pass model and a chunked one with the same weights."""
    torch.manual_seed(0)
    whole = TransICDModel(config()).to(dtype)
    split = TransICDModel(config(**chunked)).to(dtype)
    split.load_state_dict(whole.state_dict())
    return whole, split


def loss_and_grads(model: TransICDModel, autocast: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    ids, mask, labels = batch()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(ids, mask, labels=labels)
    assert out.loss is not None
    out.loss.backward()
    return out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunked", [{"label_chunk_size": 1}, {"label_chunk_size": 3}, {"attention_memory_mb": 1e-3}])
def test_ldam_loss_and_gradients_equal_the_one_pass_model_in_float64(chunked: dict) -> None:
    whole, split = twin_models(torch.float64, **chunked)
    assert split.head.chunk_size(torch.zeros(3, 10, 8)) < NUM_LABELS, "the split model really chunks"
    loss, grads = loss_and_grads(whole)
    split_loss, split_grads = loss_and_grads(split)
    torch.testing.assert_close(split_loss, loss, rtol=1e-12, atol=1e-12)
    assert (
        grads.keys() == split_grads.keys() and "head.scores.weight" in grads and "backbone.embeddings.weight" in grads
    )
    for name, grad in grads.items():
        torch.testing.assert_close(split_grads[name], grad, rtol=1e-10, atol=1e-12, msg=name)


def test_ldam_loss_and_gradients_equal_the_one_pass_model_under_bf16_autocast() -> None:
    whole, split = twin_models(torch.float32, label_chunk_size=2)
    loss, grads = loss_and_grads(whole, autocast=True)
    split_loss, split_grads = loss_and_grads(split, autocast=True)
    assert split_loss.dtype == torch.float32
    torch.testing.assert_close(split_loss, loss, rtol=1e-3, atol=1e-3)
    # b2's exact gradient is 0 (the softmax ignores a shift), so its bf16 noise is measured on the model's scale.
    floor = 0.1 * max(float(grad.abs().max()) for grad in grads.values())
    for name, grad in grads.items():
        scale = max(float(grad.abs().max()), floor)
        torch.testing.assert_close(split_grads[name], grad, rtol=0.0, atol=3e-2 * scale, msg=name)


def test_attentions_only_when_asked_or_when_they_fit() -> None:
    whole, split = twin_models(torch.float64, label_chunk_size=3)
    ids, mask, _ = batch()
    assert whole(ids, mask).attentions.shape == (3, NUM_LABELS, 10), "all labels in one chunk: returned"
    assert whole(ids, mask, output_attentions=False).attentions is None
    assert split(ids, mask).attentions is None, "chunked: never built"
    asked = split(ids, mask, output_attentions=True)
    torch.testing.assert_close(asked.attentions, whole(ids, mask).attentions)
    torch.testing.assert_close(split(ids, mask).logits, asked.logits, rtol=1e-12, atol=1e-12)


def test_automatic_chunk_follows_the_budget_and_the_batch() -> None:
    model = TransICDModel(config(attention_memory_mb=3 * 10 * 4 * 4 * 2 / 2**20))  # two labels of a (3, 10) batch
    assert model.head.chunk_size(torch.zeros(3, 10, 8)) == 2
    assert model.head.chunk_size(torch.zeros(3, 5, 8)) == 4, "shorter notes: more labels per chunk"
    assert model.head.chunk_size(torch.zeros(3, 10, 8, dtype=torch.float64)) == 1, "float64 scores: twice the bytes"
    assert TransICDModel(config(label_chunk_size=100)).head.chunk_size(torch.zeros(3, 10, 8)) == NUM_LABELS


def test_chunk_settings_are_saved_loaded_and_validated(tmp_path: Path) -> None:
    model = TransICDModel(config(label_chunk_size=3, attention_memory_mb=16.0))
    model.save_pretrained(tmp_path)
    loaded = TransICDModel.from_pretrained(tmp_path)
    assert (loaded.config.label_chunk_size, loaded.config.attention_memory_mb) == (3, 16.0)
    assert (loaded.head.label_chunk_size, loaded.head.memory_mb) == (3, 16.0)
    assert TransICDConfig().label_chunk_size is None and TransICDConfig().attention_memory_mb == 16.0
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="`label_chunk_size`"):
            config(label_chunk_size=bad)
    for bad_mb in (0.0, -1.0):
        with pytest.raises(ValueError, match="`attention_memory_mb`"):
            config(attention_memory_mb=bad_mb)
    with pytest.raises(TypeError, match="`attention_memory_mb`"):
        config(attention_memory_mb="64")


def test_top_codes_match_the_one_pass_model() -> None:
    whole, split = twin_models(torch.float64, label_chunk_size=2)
    ids, mask, _ = batch()
    full = whole(ids, mask)
    top = split.top_codes(ids, mask, k=3)
    expected = full.logits.topk(3, dim=1)
    assert torch.equal(top.indices, expected.indices)
    torch.testing.assert_close(top.probabilities, expected.values.sigmoid())
    gathered = full.attentions.gather(1, top.indices.unsqueeze(-1).expand(-1, -1, 10))
    torch.testing.assert_close(top.attentions, gathered)
    assert float(top.attentions[1, :, 6:].abs().max()) == 0.0, "padding gets no attention"
    assert split.top_codes(ids, mask, k=50).indices.shape == (3, NUM_LABELS), "k is capped at the label count"
    with pytest.raises(ValueError, match="`k`"):
        split.top_codes(ids, mask, k=0)
    with pytest.raises(ValueError, match="pooling='mean'"):
        TransICDModel(config(pooling="mean")).top_codes(ids, mask)


def test_explanations_of_a_chunked_model_are_the_one_pass_attention_maps() -> None:
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")
    whole, split = twin_models(torch.float32, label_chunk_size=1)
    text = "cough and wheeze and asthma"
    explanation = explain_note(split, tokenizer, text, top_codes=2, top_tokens=3)
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    full = whole.eval()(ids)
    order = full.logits[0].argsort(descending=True)[:2].tolist()
    assert [code.code for code in explanation.codes] == [whole.label_names[i] for i in order]
    for code, index in zip(explanation.codes, order, strict=True):
        torch.testing.assert_close(torch.tensor(code.weights), full.attentions[0, index])
