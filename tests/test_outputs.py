"""output_logits: the logits of a bare tensor, a dict, a ModelOutput and an object with .logits; a clear error
otherwise (naming the model argument)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_margin._outputs import output_logits


def test_every_output_form_gives_its_logits() -> None:
    logits = torch.randn(3, 4)
    assert output_logits(logits) is logits
    assert output_logits({"logits": logits, "loss": torch.zeros(())}) is logits
    assert output_logits(SequenceClassifierOutput(loss=None, logits=logits)) is logits
    assert output_logits(SimpleNamespace(logits=logits)) is logits


def test_outputs_without_logits_are_refused() -> None:
    with pytest.raises(TypeError, match=r"`model` must return logits.*got dict"):
        output_logits({"scores": torch.zeros(2, 2)})
    with pytest.raises(TypeError, match=r"`teacher` must return logits.*got SequenceClassifierOutput"):
        output_logits(SequenceClassifierOutput(loss=torch.zeros(())), name="teacher")
    with pytest.raises(TypeError, match=r"`model` must return logits.*got tuple"):
        output_logits((torch.zeros(2, 2),))
