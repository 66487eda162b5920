"""Keep PETAL's quality column through `Trainer`'s column filter.

`Trainer` drops dataset columns that the (base) model's `forward` does not name, so a ``petal_quality``
column would vanish before reaching the model. `PetalColumnsMixin` adds the quality keys of the model's
PETAL adapters to the kept columns; mix it into any `Trainer` subclass, or use `PetalTrainer`.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from transformers import Trainer


def quality_keys(model: nn.Module) -> list[str]:
    """The quality keywords of the PETAL adapters of a (peft-wrapped) model."""
    configs: dict[str, Any] = getattr(model, "peft_config", {}) or {}
    return sorted({c.quality_key for c in configs.values() if getattr(c, "peft_type", None) == "PETAL"})


class PetalColumnsMixin:
    """For `Trainer` subclasses: keep the PETAL quality column(s) of the model's adapters."""

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()  # type: ignore[misc]
        columns: list[str] = self._signature_columns  # type: ignore[attr-defined]
        columns += [k for k in quality_keys(self.model) if k not in columns]  # type: ignore[attr-defined]


class PetalTrainer(PetalColumnsMixin, Trainer):
    """`Trainer` that passes a PETAL quality column (e.g. ``petal_quality``) from the dataset to the model."""
