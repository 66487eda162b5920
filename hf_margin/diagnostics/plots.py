"""Pictures of gradient entanglement: a run's measurements over steps, the per-pair case map, and the
token-level cosine heat map of one pair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hf_margin._extras import require
from hf_margin.diagnostics.gradient_entanglement import RECORDS_FILE


def load_records(run: str | Path) -> list[dict[str, Any]]:
    """The records a `GradientEntanglementCallback` wrote: a run's output folder or the JSONL file itself."""
    path = Path(run)
    path = path / RECORDS_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no {RECORDS_FILE} at {path}: train with GradientEntanglementCallback first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "data", "Plotting")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_entanglement(run: str | Path, out: str | Path) -> Path:
    """Three panels: condition ratio and cosine over steps; log-probs of the eval pairs (or the observed
    per-step changes) over steps; the eval pairs' case map with the regions shaded."""
    plt = _pyplot()
    records = load_records(run)
    batch = [r for r in records if r["kind"] == "batch"]
    pairs = [r for r in records if r["kind"] == "pair"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))

    steps = [r["step"] for r in batch]
    axes[0].plot(steps, [r["condition"] for r in batch], "o-", label="condition ratio (batch)")
    axes[0].plot(steps, [r["cosine"] for r in batch], "s-", label="cosine (batch)")
    axes[0].axhline(1.0, color="grey", linewidth=0.7, linestyle="--")
    axes[0].set(xlabel="step", title="<g_w, g_l> / min(|g_w|^2, |g_l|^2) and cosine")
    axes[0].legend(fontsize=8)

    if pairs:
        eval_steps = sorted({r["step"] for r in pairs})
        for key, label in (("logp_chosen", "chosen"), ("logp_rejected", "rejected")):
            means = [np.mean([r[key] for r in pairs if r["step"] == s]) for s in eval_steps]
            axes[1].plot(eval_steps, means, "o-", label=f"log p({label}), eval pairs")
        axes[1].set(title="eval log-probabilities")
    else:
        axes[1].plot(steps, np.cumsum([r["dlogp_chosen"] for r in batch]), "o-", label="chosen")
        axes[1].plot(steps, np.cumsum([r["dlogp_rejected"] for r in batch]), "o-", label="rejected")
        axes[1].set(title="cumulative observed change of log p (measured steps)")
    axes[1].set(xlabel="step")
    axes[1].legend(fontsize=8)

    # degenerate pairs (a zero or non-finite gradient) have no place on the map: drawn at 0 they would look ideal
    points = [r for r in pairs or batch if r["case"] != "degenerate"]
    x = np.array([r["inner"] / r["norm_chosen"] ** 2 for r in points])
    y = np.array([r["inner"] / r["norm_rejected"] ** 2 for r in points])
    limit = max(2.0, float(np.max(np.abs(np.concatenate([x, y])), initial=0.0)) * 1.1)
    axes[2].fill_between([-limit, 1], -limit, 1, color="tab:green", alpha=0.15, label="ideal")
    axes[2].fill_between([1, limit], -limit, 1, color="tab:red", alpha=0.15, label="both down")
    axes[2].fill_between([-limit, 1], 1, limit, color="tab:orange", alpha=0.15, label="both up")
    scatter = axes[2].scatter(x, y, c=[r["step"] for r in points], s=14, cmap="viridis")
    fig.colorbar(scatter, ax=axes[2], label="step")
    axes[2].set(
        xlim=(-limit, limit),
        ylim=(-limit, limit),
        xlabel="<g_w, g_l> / |g_w|^2",
        ylabel="<g_w, g_l> / |g_l|^2",
        title=f"cases per pair ({len(pairs or batch) - len(points)} degenerate left out)",
    )
    axes[2].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_token_cosines(cosines: Any, chosen_tokens: list[str], rejected_tokens: list[str], out: str | Path) -> Path:
    """Heat map of `token_gradient_cosines` (rows: chosen-response tokens, columns: rejected-response tokens)."""
    plt = _pyplot()
    matrix = np.asarray(cosines, dtype=float)
    fig, ax = plt.subplots(figsize=(0.45 * len(rejected_tokens) + 3, 0.45 * len(chosen_tokens) + 2))
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(rejected_tokens)), rejected_tokens, rotation=60, ha="right")
    ax.set_yticks(range(len(chosen_tokens)), chosen_tokens)
    ax.set(xlabel="rejected response", ylabel="chosen response", title="token gradient cosine")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
