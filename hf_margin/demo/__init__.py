"""`hf-margin demo`: each implemented method against its baseline on real data, in one table.

Every entry is a module in this package with a ``run(context) -> list[DemoRow]`` function; `DEMOS` lists
them (imported only when run, so one entry's missing extra does not stop the others). The default run is the
core methods (about 5 minutes on 2 CPU cores); the catalogue's entries run with `--all` or `--only`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import time
import typing
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hf_margin.demo._recipe_config import RecipePaths, check_output_folder, parse_recipe_arguments

NEEDS_FACES = (
    "needs the ORL faces (not shipped; the AT&T face database, att_faces/): --data-dir DIR or HF_MARGIN_DATA=DIR"
)


@dataclass(frozen=True)
class DemoRow:
    """One line of the demo table: a method against its baseline on one metric.

    Higher is better unless the metric's name says "(lower is better)". `seconds` is the method's wall time in
    this run (0 when the row has no time of its own, e.g. a ratio). A row that measured nothing has NaN values and
    a `note` saying why (`DemoRow.skipped`).
    """

    entry: str
    method: str
    baseline: str
    metric: str
    ours: float
    baseline_value: float
    seconds: float
    dataset: str
    note: str = ""

    @property
    def lower_is_better(self) -> bool:
        return "lower is better" in self.metric

    @property
    def measured(self) -> bool:
        return not (math.isnan(self.ours) or math.isnan(self.baseline_value))

    @classmethod
    def skipped(cls, entry: str, method: str, baseline: str, metric: str, dataset: str, note: str) -> DemoRow:
        """The row of an entry that cannot measure its method here: no values, and the `note` says what it needs."""
        return cls(entry, method, baseline, metric, math.nan, math.nan, 0.0, dataset, note)


@dataclass
class DemoContext:
    """What an entry gets: where to write, where data lives, and a progress-bar factory."""

    out_dir: Path
    data_dir: Path | None = None
    progress: Callable[..., Any] = field(default=tqdm)


@dataclass(frozen=True)
class DemoEntry:
    """One demo entry: its name, the module with its `run`, what it compares, and whether the default run has it."""

    name: str
    module: str
    description: str
    in_default: bool = True

    def run(self, context: DemoContext) -> list[DemoRow]:
        return list(importlib.import_module(self.module).run(context))


DEMOS: dict[str, DemoEntry] = {
    entry.name: entry
    for entry in (
        DemoEntry(
            "margin_heads",
            "hf_margin.demo.margin_heads",
            "Open-set face verification (ORL faces, or digits): softmax CE vs ArcFace, CosFace, ElasticFace, "
            "AdaFace on a pretrained EfficientNet-lite0",
        ),
        DemoEntry(
            "petal",
            "hf_margin.demo.petal",
            "Low-resolution face verification (needs the ORL faces): PETAL vs LoRA vs full fine-tuning of an "
            "ArcFace-pretrained ViT",
        ),
        DemoEntry(
            "madpo",
            "hf_margin.demo.madpo",
            "Preference tuning of SmolLM2-135M on Rotten Tomatoes pairs scored by a MiniLM reward model: MADPO vs "
            "DPO, judged by a held-out classifier",
        ),
        DemoEntry(
            "embedding",
            "hf_margin.demo.embedding",
            "ICD-10-CM term -> description retrieval with all-MiniLM-L6-v2: MarginEmbeddingLoss (focal, mixing, "
            "false-negative filter, soft labels) vs MultipleNegativesRankingLoss with hard negatives",
        ),
        DemoEntry(
            "transicd",
            "hf_margin.demo.transicd",
            "Multi-label ICD-10-CM pseudo-notes (50 categories): TransICD (code-wise attention + LDAM) vs attention "
            "+ BCE vs mean pooling + BCE",
        ),
        DemoEntry(
            "margin_mse",
            "hf_margin.demo.margin_mse",
            "ICD-10-CM term -> description ranking: a MiniLM cross-encoder teacher distilled into a 2-layer MiniLM "
            "bi-encoder with MarginMSETrainer vs the same student trained on labels only",
        ),
        DemoEntry(
            "imbalance",
            "hf_margin.demo.imbalance",
            "Rotten Tomatoes fresh/rotten at 1:20 on frozen MiniLM features: LDAM-DRW, AUC-M and AnyLoss-F1 vs "
            "cross-entropy through ClassificationLossTrainer",
            in_default=False,
        ),
        DemoEntry(
            "metric_learning",
            "hf_margin.demo.metric_learning",
            "Open-set retrieval on held-out identities (ORL faces, or digits), frozen EfficientNet-lite0 features and "
            "a trained projection: Multi-Similarity + miner and + TCM vs PML's TripletMarginLoss and PML's MS "
            "(Recall@1, MAP@R, OPIS)",
            in_default=False,
        ),
        DemoEntry(
            "contrastive",
            "hf_margin.demo.contrastive",
            "Digits retrieval with an MLP projection: temperature InfoNCE at tau 0.07 vs 0.2 (Recall@1, uniformity, "
            "tolerance) and UNPG + ArcFace vs ArcFace",
            in_default=False,
        ),
        DemoEntry(
            "few_shot",
            "hf_margin.demo.few_shot",
            "Few-shot episodes on held-out identities (ORL faces, or digits): ProtoNet CE + Proto-Triplet / ICNN vs "
            "ProtoNet CE",
            in_default=False,
        ),
        DemoEntry(
            "distillation",
            "hf_margin.demo.distillation",
            "Digits: a 5 -> 10 class update with margin-preserving training vs plain CE (accuracy, negative-flip "
            "rate), and a student trained with Dual-Head KD vs standard KD vs CE",
            in_default=False,
        ),
        DemoEntry(
            "probabilistic",
            "hf_margin.demo.probabilistic",
            "Mauna Loa CO2 4-week-ahead ensemble forecasts (statsmodels): almost-fair CRPS vs CRPS, fair CRPS and an "
            "MSE point forecast (CRPS skill, spread/skill)",
            in_default=False,
        ),
        DemoEntry(
            "generalization",
            "hf_margin.demo.generalization",
            "Digits MLPs trained with different widths, learning rates, label noise and training-set sizes: Kendall "
            "tau of each margin / norm generalization measure (Jiang et al.) with the train-test gap",
            in_default=False,
        ),
        DemoEntry(
            "self_training",
            "hf_margin.demo.self_training",
            "Rotten Tomatoes with 40 labels per class and 1,309 unlabelled snippets (frozen MiniLM features, linear "
            "head): self-training with a probability-margin threshold vs the labelled-only baseline",
            in_default=False,
        ),
        DemoEntry(
            "drm",
            "hf_margin.demo.drm",
            "Leave-one-chapter-out laterality (left vs right) on ICD-10-CM descriptions with frozen MiniLM features: "
            "domain-specific heads (DRM) vs a single ERM head",
            in_default=False,
        ),
        DemoEntry(
            "condensation",
            "hf_margin.demo.condensation",
            "Digits condensed to 1 and 10 images per class by gradient matching: DCC vs DC vs random real images, a "
            "small ConvNet trained from scratch on each (test accuracy)",
            in_default=False,
        ),
        DemoEntry(
            "probes",
            "hf_margin.demo.probes",
            "Shared-variance naive Bayes probe vs logistic regression, 1-50 shots per class, on frozen MiniLM "
            "(Rotten Tomatoes) and EfficientNet-lite0 (ORL faces, or digits) features",
            in_default=False,
        ),
        DemoEntry(
            "aggregate",
            "hf_margin.demo.aggregate",
            "Linear regression on scikit-learn's diabetes data learnt from bag means (k = 1, 4, 16): bag-level and "
            "interpolating vs instance-level loss (test MSE)",
            in_default=False,
        ),
        DemoEntry(
            "robustness",
            "hf_margin.demo.robustness",
            "A small CNN on digits under the probability-margin attack (PMA) vs PGD on cross-entropy at the same "
            "L-inf radius and gradient budget (robust accuracy)",
            in_default=False,
        ),
        DemoEntry(
            "offline_optimization",
            "hf_margin.demo.offline_optimization",
            "Offline model-based optimisation on scikit-learn's diabetes data (an oracle fitted on all rows, the "
            "bottom half offline): gradient ascent on an MLP surrogate trained with IGNITE / IGNITE-2 vs the plain "
            "Trainer (normalised oracle score)",
            in_default=False,
        ),
        DemoEntry(
            "landmark_distillation",
            "hf_margin.demo.landmark_distillation",
            "Mauna Loa CO2 next-8-week changes as coordinates (statsmodels): a small MLP student trained with KD-Loss "
            "from Tough and Tolerant (PCA soft-target) teachers vs the student alone and plain KD (test MAE)",
            in_default=False,
        ),
        DemoEntry(
            "ood_unlabeled",
            "hf_margin.demo.ood_unlabeled",
            "The RSS poster's Gaussian mixture (d = 200, ramp loss, 10 labelled + 10,000 unlabelled rows, shift 0 and "
            "0.5): RSS with and without the robust loss vs ERM on the labelled rows (test accuracy)",
            in_default=False,
        ),
        DemoEntry(
            "hyperspherical",
            "hf_margin.demo.hyperspherical",
            "Novel people added from 1, 3 and 5 shots (ORL faces, or digits; frozen EfficientNet-lite0 features): a "
            "hyperspherical head with imprinted class vectors (no gradient step) vs a softmax retrained on all classes "
            "(known / novel accuracy, joint and disjoint)",
            in_default=False,
        ),
        DemoEntry(
            "modhifi",
            "hf_margin.demo.modhifi",
            "Digits MLPs pruned without fine-tuning (ModHiFi-P vs structured magnitude pruning, accuracy vs sparsity) "
            "and one digit unlearned (ModHiFi-U vs as many random weights zeroed; forgotten vs other digits)",
            in_default=False,
        ),
        DemoEntry(
            "m2fnet_triplet",
            "hf_margin.demo.m2fnet_triplet",
            "Open-set face retrieval (ORL faces, or digits; frozen EfficientNet-lite0, linear projection): M2FNet's "
            "adaptive-margin triplet loss (default and printed form) vs PML's triplet loss, 3 seeds",
            in_default=False,
        ),
    )
}


def select(names: Iterable[str] | None, everything: bool = False) -> list[DemoEntry]:
    """The entries to run: those named (unknown names are an error listing the known ones), else every entry
    (`everything`) or the default run's."""
    if not names:
        return [entry for entry in DEMOS.values() if everything or entry.in_default]
    unknown = [n for n in names if n not in DEMOS]
    if unknown:
        raise ValueError(f"unknown demo entry {', '.join(unknown)}; known: {', '.join(DEMOS)}")
    return [DEMOS[n] for n in names]


def format_table(rows: list[DemoRow]) -> str:
    """The rows as a fixed-width text table ("-" for a value not measured; a note column when a row has one)."""
    header: tuple[str, ...] = ("method", "baseline", "metric", "ours", "baseline's", "wall time")
    notes = any(r.note for r in rows)
    if notes:
        header = (*header, "note")
    body = [
        (r.method, r.baseline, r.metric, _value(r.ours), _value(r.baseline_value), _duration(r.seconds))
        + ((r.note,) if notes else ())
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _value(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def plot_rows(rows: list[DemoRow], path: Path) -> None:
    """Draw `results_figure` of the rows to `path` (PNG)."""
    import matplotlib.pyplot as plt

    fig = results_figure(rows)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def results_figure(rows: list[DemoRow]) -> Any:
    """The rows as a matplotlib figure: one panel per entry and in it one axis per metric, on that metric's own
    scale; each row is a segment from the baseline's value (grey dot) to the method's (green when better, red when
    worse, by the metric's direction), its figures on the right. An entry that measured nothing shows its note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    entries: dict[str, list[DemoRow]] = {}
    for row in rows:
        entries.setdefault(row.entry, []).append(row)
    heights = [0.5 + sum(0.5 + 0.3 * len(group) for group in _by_metric(group).values()) for group in entries.values()]
    fig = plt.figure(figsize=(9, sum(heights) + 0.7), layout="constrained")
    header, *panels = fig.subfigures(len(entries) + 1, 1, height_ratios=[0.7, *heights], squeeze=False)[:, 0]
    header.suptitle("hf-margin demo: each method's change over its baseline, one scale per metric")
    legend = [
        Line2D([], [], linestyle="none", marker=shape, markersize=7, color=colour, label=label)
        for shape, colour, label in (
            ("o", _NEUTRAL, "baseline"),
            ("D", _BETTER, "method, better"),
            ("D", _WORSE, "method, worse"),
        )
    ]
    header.legend(handles=legend, loc="lower center", ncols=3, frameon=False, fontsize=9)
    for panel, group in zip(panels, entries.values(), strict=True):
        panel.suptitle(f"{group[0].entry}: {group[0].dataset}", x=0.01, ha="left", fontsize=10, fontweight="bold")
        metrics = _by_metric(group)
        if not metrics:
            notes = sorted({r.note for r in group if r.note})
            panel.text(0.5, 0.4, "\n".join(notes) or "no rows", ha="center", va="center", fontsize=9)
            continue
        ratios = [len(metric_rows) + 1.5 for metric_rows in metrics.values()]
        axes = panel.subplots(len(metrics), 1, squeeze=False, gridspec_kw={"height_ratios": ratios})[:, 0]
        for ax, (metric, metric_rows) in zip(axes, metrics.items(), strict=True):
            _draw_metric(ax, metric, metric_rows)
    return fig


_NEUTRAL, _BETTER, _WORSE = "0.55", "tab:green", "tab:red"


def _by_metric(rows: list[DemoRow]) -> dict[str, list[DemoRow]]:
    groups: dict[str, list[DemoRow]] = {}
    for row in rows:
        if row.measured:
            groups.setdefault(row.metric, []).append(row)
    return groups


def _draw_metric(ax: Any, metric: str, rows: list[DemoRow]) -> None:
    one_baseline = len({r.baseline for r in rows}) == 1
    for y, row in enumerate(rows):
        change = row.ours - row.baseline_value
        better = change < 0 if row.lower_is_better else change > 0
        colour = _NEUTRAL if change == 0 else _BETTER if better else _WORSE
        ax.plot([row.baseline_value, row.ours], [y, y], color=colour, linewidth=2)
        ax.plot(row.baseline_value, y, "o", color=_NEUTRAL, markersize=6)
        ax.plot(row.ours, y, "D", color=colour, markersize=6)
    values = [v for r in rows for v in (r.ours, r.baseline_value)]
    low, high = min(values), max(values)
    # At least a fifth of the values' size across, so that a change of a few thousandths does not fill the axis.
    span = max(high - low, 0.2 * max(abs(low), abs(high)), 1e-3)
    middle = (low + high) / 2
    ax.set_xlim(middle - 0.6 * span, middle + 0.6 * span)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    labels = [r.method if one_baseline else f"{r.method} vs {r.baseline}" for r in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    values_axis = ax.secondary_yaxis("right")  # the figures, as a column right of the plot
    values_axis.set_yticks(range(len(rows)), [_change_label(r) for r in rows], fontsize=7)
    values_axis.tick_params(length=0)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    direction = "" if rows[0].lower_is_better else " (higher is better)"
    against = f", baseline: {rows[0].baseline}" if one_baseline else ""
    ax.set_title(f"{metric}{direction}{against}", fontsize=8, loc="left")


def _change_label(row: DemoRow) -> str:
    change = row.ours - row.baseline_value
    shown = "same" if change == 0 else _figure(change, sign=True)
    return f"{_figure(row.ours)} vs {_figure(row.baseline_value)} ({shown})"


def _figure(value: float, sign: bool = False) -> str:
    """Three significant figures, without an exponent for values up to millions."""
    text = f"{value:+,.0f}" if abs(value) >= 100 else f"{value:+.3g}"
    return text if sign else text.removeprefix("+")


def _json_row(row: DemoRow) -> dict[str, Any]:
    """The row for results.json: NaN (not measured) as null, which JSON has."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(row).items()}


def run_demos(entries: list[DemoEntry], context: DemoContext) -> list[DemoRow]:
    """Run the entries, then write ``results.json`` and ``results.png`` to the context's folder."""
    context.out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[DemoRow] = []
    timings: dict[str, float] = {}
    for entry in context.progress(entries, desc="demo", unit="entry"):
        start = time.perf_counter()
        rows.extend(entry.run(context))
        timings[entry.name] = time.perf_counter() - start
    report = {"rows": [_json_row(r) for r in rows], "entry_seconds": timings}
    (context.out_dir / "results.json").write_text(json.dumps(report, indent=2))
    if rows:
        plot_rows(rows, context.out_dir / "results.png")
    return rows


def recipe_main(setup_type: type, run: Callable[[DemoContext, Any], list[DemoRow]], default_out_dir: str) -> None:
    """The command line of a recipe script: ``script.py [config.yaml] [--field value ...]``.

    Reads the entry's setup dataclass plus ``--data_dir`` / ``--out_dir`` (`parse_recipe_arguments`: the
    config's fields, then the words over them, each read as its field's type), makes the output folder and checks
    it is writable, all before any work; then runs the entry with that setup and prints its table. A bad value or
    folder exits with one line naming it. ``--help`` lists the fields.
    """
    import sys

    from hf_margin.demo._processes import is_main_process

    argv = sys.argv[1:]
    if argv and argv[0] in ("-h", "--help"):
        print(recipe_help(setup_type, default_out_dir, Path(sys.argv[0]).name))
        return
    try:
        setup, paths = parse_recipe_arguments(setup_type, default_out_dir, argv)
        context = DemoContext(out_dir=Path(paths.out_dir), data_dir=Path(paths.data_dir) if paths.data_dir else None)
        check_output_folder(context.out_dir)
        context.out_dir.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as error:
        raise SystemExit(f"{Path(sys.argv[0]).name}: error: {error}") from None
    rows = run(context, setup)
    if is_main_process():  # launched on several processes: one table
        print(format_table(rows))
        print(f"\nresults in {context.out_dir}")


def recipe_help(setup_type: type, default_out_dir: str, prog: str) -> str:
    """A recipe script's ``--help``: its usage and every field with its type and default."""
    fields = [*dataclasses.fields(setup_type), *dataclasses.fields(RecipePaths)]
    defaults = {f.name: f.default for f in fields} | {"out_dir": default_out_dir}
    lines = [f"usage: {prog} [config.yaml] [--field value ...]", "", f"fields of {setup_type.__name__} (and paths):"]
    hints = {**typing.get_type_hints(setup_type), **typing.get_type_hints(RecipePaths)}
    lines += [f"  --{f.name} ({_type_text(hints[f.name])}, default {defaults[f.name]!r})" for f in fields]
    return "\n".join(lines)


def _type_text(kind: Any) -> str:
    return kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")
