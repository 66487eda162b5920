"""`hf-margin demo`: each implemented method against its baseline on real data, in one table.

Every entry is a module in this package with a ``run(context) -> list[DemoRow]`` function; `DEMOS` lists
them (imported only when run, so one entry's missing extra does not stop the others). The default run is the
core methods (about 5 minutes on 2 CPU cores); the catalogue's entries run with `--all` or `--only`.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm


@dataclass(frozen=True)
class DemoRow:
    """One line of the demo table: a method against its baseline on one metric (higher is better)."""

    entry: str
    method: str
    baseline: str
    metric: str
    ours: float
    baseline_value: float
    seconds: float
    dataset: str


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
            "Low-resolution face verification (ORL faces, or digits): PETAL vs LoRA vs full fine-tuning of an "
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
    """The rows as a fixed-width text table."""
    header = ("method", "baseline", "metric", "ours", "baseline's", "wall time")
    body = [
        (r.method, r.baseline, r.metric, f"{r.ours:.4f}", f"{r.baseline_value:.4f}", f"{r.seconds:.1f} s") for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_rows(rows: list[DemoRow], path: Path) -> None:
    """A horizontal bar chart of ours vs the baseline for every row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.method} ({r.metric})" for r in rows]
    positions = range(len(rows))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    ax.barh([p + 0.2 for p in positions], [r.ours for r in rows], height=0.4, label="method")
    ax.barh([p - 0.2 for p in positions], [r.baseline_value for r in rows], height=0.4, label="baseline")
    ax.set_yticks(list(positions), labels)
    ax.invert_yaxis()
    ax.set_xlabel("metric value (higher is better)")
    ax.set_title("hf-margin demo: each method against its baseline")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demos(entries: list[DemoEntry], context: DemoContext) -> list[DemoRow]:
    """Run the entries, then write ``results.json`` and ``results.png`` to the context's folder."""
    context.out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[DemoRow] = []
    timings: dict[str, float] = {}
    for entry in context.progress(entries, desc="demo", unit="entry"):
        start = time.perf_counter()
        rows.extend(entry.run(context))
        timings[entry.name] = time.perf_counter() - start
    report = {"rows": [asdict(r) for r in rows], "entry_seconds": timings}
    (context.out_dir / "results.json").write_text(json.dumps(report, indent=2))
    if rows:
        plot_rows(rows, context.out_dir / "results.png")
    return rows


def parse_recipe_arguments(setup_type: type, default_out_dir: str, argv: list[str]) -> tuple[Any, Any]:
    """A recipe's setup and its paths (``data_dir``, ``out_dir``) from ``[config.yaml]`` or ``[--field value ...]``
    (`HfArgumentParser`)."""
    from transformers import HfArgumentParser

    @dataclass
    class Paths:
        data_dir: str | None = field(default=None, metadata={"help": "folder holding local data sets"})
        out_dir: str = field(default=default_out_dir, metadata={"help": "where results and plots go"})

    parser = HfArgumentParser((setup_type, Paths))  # type: ignore[arg-type]
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        setup, paths = parser.parse_yaml_file(argv[0])
    else:
        setup, paths = parser.parse_args_into_dataclasses(argv)
    return setup, paths


def recipe_main(setup_type: type, run: Callable[[DemoContext, Any], list[DemoRow]], default_out_dir: str) -> None:
    """The command line of a recipe script: ``script.py config.yaml`` or ``script.py --field value ...``.

    Parses the entry's setup dataclass plus ``--data_dir`` / ``--out_dir`` (`parse_recipe_arguments`), runs the
    entry with that setup and prints its table.
    """
    import sys

    setup, paths = parse_recipe_arguments(setup_type, default_out_dir, sys.argv[1:])
    context = DemoContext(out_dir=Path(paths.out_dir), data_dir=Path(paths.data_dir) if paths.data_dir else None)
    context.out_dir.mkdir(parents=True, exist_ok=True)
    print(format_table(run(context, setup)))
    print(f"\nresults in {context.out_dir}")
