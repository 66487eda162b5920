"""The logits of a model output, whatever its form: shared by the trainers and the metrics that run models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor


def output_logits(outputs: Any, name: str = "model") -> Tensor:
    """The logits of a model output: a tensor, a mapping (dict, ModelOutput) with ``"logits"`` or ``.logits``.

    Args:
        outputs: what the model returned.
        name: the model's name in the error message.

    Raises:
        TypeError: naming `name`, when `outputs` holds no logits tensor.

    Example:
        >>> output_logits(model(**inputs)).argmax(dim=1)
    """
    if isinstance(outputs, Mapping) and "logits" in outputs:
        logits = outputs["logits"]
    else:
        logits = getattr(outputs, "logits", outputs)
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"`{name}` must return logits: a tensor, or an output with .logits / ['logits'], got "
            f"{type(outputs).__name__}"
        )
    return logits
