"""MarginHeadModel with head_type="hyperspherical": classes added by imprinting survive save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from hf_margin import HypersphericalHead, MarginHeadConfig, MarginHeadModel
from tests.models.test_margin_head_model import _bert_config, _text_batch


def _model(head_type: str = "hyperspherical") -> MarginHeadModel:
    torch.manual_seed(0)
    config = MarginHeadConfig(backbone_config=_bert_config(), head_type=head_type, embedding_size=8)
    config.num_labels = 4
    return MarginHeadModel(config).eval()


def test_imprinted_classes_survive_save_and_load(tmp_path: Path) -> None:
    model = _model()
    batch = _text_batch()
    with torch.no_grad():
        embeddings = model(**batch).embeddings
        before = model(**batch).logits
    new = model.add_classes(embeddings[:3], torch.tensor([4, 5, 4]))
    assert new.shape == (2, 8) and model.config.num_labels == 6 and model.head.num_classes == 6
    with torch.no_grad():
        after = model(**batch).logits
    torch.testing.assert_close(after[:, :4], before)
    assert after[:3, 4:].argmax(1).tolist() == [0, 1, 0], "each shot is nearest its own imprinted class"
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded.head, HypersphericalHead) and loaded.config.num_labels == 6
    torch.testing.assert_close(loaded.head.weight, model.head.weight)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, after)
        labels = torch.tensor([5, 4, 0, 1, 2, 3])
        assert torch.isfinite(loaded(**{**batch, "labels": labels}).loss)


def test_add_classes_needs_the_hyperspherical_head() -> None:
    model = _model("cosface")
    with pytest.raises(TypeError, match="head_type='hyperspherical'"):
        model.add_classes(torch.randn(2, 8), torch.tensor([4, 4]))
    assert model.config.num_labels == 4
