"""The entanglement plot leaves degenerate pairs (zero or non-finite gradients) off the case map."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hf_margin.diagnostics import plots
from hf_margin.diagnostics.gradient_entanglement import RECORDS_FILE, entanglement

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def _record(kind: str, step: int, chosen: list[float], rejected: list[float]) -> dict:
    stats = entanglement(torch.tensor(chosen), torch.tensor(rejected)).as_dict()
    extra = (
        {"logp_chosen": -1.0, "logp_rejected": -2.0}
        if kind == "pair"
        else {"dlogp_chosen": 0.1, "dlogp_rejected": -0.1}
    )
    return {"kind": kind, "step": step, **stats, **extra}


def test_degenerate_pairs_are_left_off_the_case_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        _record("batch", 1, [1.0, 0.0], [0.5, 1.0]),
        _record("pair", 1, [1.0, 0.0], [0.0, 1.0]),
        _record("pair", 1, [0.0, 0.0], [0.0, 0.0]),  # degenerate: NaN condition
    ]
    assert math.isnan(records[2]["condition"]) and records[2]["case"] == "degenerate"
    (tmp_path / RECORDS_FILE).write_text("\n".join(json.dumps(r) for r in records))
    plotted: list[int] = []
    original = plots._pyplot

    def spy() -> object:
        plt = original()
        subplots = plt.subplots

        def recording_subplots(*args: object, **kwargs: object) -> object:
            fig, axes = subplots(*args, **kwargs)
            scatter = axes[2].scatter

            def count(x: object, y: object, *a: object, **k: object) -> object:
                plotted.append(len(x))  # type: ignore[arg-type]
                return scatter(x, y, *a, **k)

            axes[2].scatter = count
            return fig, axes

        monkeypatch.setattr(plt, "subplots", recording_subplots)
        return plt

    monkeypatch.setattr(plots, "_pyplot", spy)
    out = plots.plot_entanglement(tmp_path, tmp_path / "ge.png")
    assert out.is_file() and plotted == [1]
