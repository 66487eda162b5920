"""The `hf-margin` command: the catalogue (`list`) and the main job (`demo`).

Errors print as one line (``hf-margin: error: ...``); set ``HF_MARGIN_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any, get_args

from hf_margin import __version__
from hf_margin._extras import extra_for
from hf_margin.catalogue import CATALOGUE, Kind, Method, markdown_table
from hf_margin.recipes_cli import add_train_parser


def _list(args: argparse.Namespace) -> None:
    if args.format == "markdown":
        print(markdown_table())
        return
    if args.format == "json":
        print(json.dumps([asdict(m) for m in CATALOGUE], indent=2))
        return
    print("\n".join(catalogue_lines(shutil.get_terminal_size().columns)))


def catalogue_lines(width: int) -> list[str]:
    """`hf-margin list`'s text, wrapped to `width` columns: the implemented methods by kind with their entry
    points, then the planned and out-of-scope ones with their reasons (they have no entry point yet)."""
    implemented = [m for m in CATALOGUE if m.status == "implemented"]
    lines = _wrap(
        f"{len(implemented)} of {len(CATALOGUE)} methods implemented; the paper titles are in `hf-margin list "
        "--format markdown` (or json).",
        width,
    )
    point_width = max(len(m.entry_point) for m in implemented)
    label_width = width - point_width - 4  # two spaces of indent, two between the columns
    for kind in get_args(Kind):
        members = [m for m in implemented if m.kind == kind]
        if members:
            lines += ["", f"{kind}:"]
        for m in members:
            if label_width < 16:  # too narrow for two columns: the entry point under the method
                lines += _wrap(_label(m), width, indent="  ")
                lines.append(f"    {m.entry_point}")
                continue
            label = _wrap(_label(m), label_width)
            lines.append(f"  {label[0]:<{label_width}}  {m.entry_point}")
            lines += [f"  {more}" for more in label[1:]]
    for status in ("planned", "out of scope"):
        members = [m for m in CATALOGUE if m.status == status]
        if members:
            lines += ["", f"{status} (not implemented, no entry point):"]
        for m in members:
            lines += _wrap(f"{_label(m)}, {m.kind}", width, indent="  ", hanging="    ")
            lines += _wrap(m.reason, width, indent="    ")
    return lines


def _wrap(text: str, width: int, indent: str = "", hanging: str | None = None) -> list[str]:
    """`text` wrapped to `width` columns at spaces only (hyphenated words and entry points stay whole)."""
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=indent if hanging is None else hanging,
        break_on_hyphens=False,
    )


def _label(method: Method) -> str:
    return f"{method.method} ({method.arxiv})" if method.arxiv else method.method


def _demo(args: argparse.Namespace) -> None:
    from hf_margin.demo import DEMOS, DemoContext, format_table, run_demos, select

    if args.list:
        for entry in DEMOS.values():
            print(f"{entry.name:16s} {'default' if entry.in_default else '--all  '} {entry.description}")
        return
    entries = select(args.only, everything=args.all)
    context = DemoContext(out_dir=Path(args.out), data_dir=Path(args.data_dir) if args.data_dir else None)
    rows = run_demos(entries, context)
    print(format_table(rows))
    print(f"\nwrote {context.out_dir / 'results.json'} and {context.out_dir / 'results.png'}")


def _load_rows(path: str) -> Any:
    """A saved dataset folder, or a .jsonl/.json/.csv/.parquet file, as a `datasets.Dataset`."""
    from datasets import load_dataset, load_from_disk

    source = Path(path)
    if source.is_dir():
        return load_from_disk(str(source))
    kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(source.suffix)
    if kind is None:
        raise ValueError(f"--dataset must be a saved dataset folder or a .jsonl/.json/.csv/.parquet file: {source}")
    return load_dataset(kind, data_files=str(source), split="train")


def _score_preferences(args: argparse.Namespace) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_margin.data.preference_scoring import score_preference_margins

    dataset = _load_rows(args.dataset)
    model = AutoModelForSequenceClassification.from_pretrained(args.reward_model)
    tokenizer = AutoTokenizer.from_pretrained(args.reward_model)
    scored = score_preference_margins(
        dataset,
        model,
        tokenizer,
        batch_size=args.batch_size,
        max_length=args.max_length,
        margin_column=args.margin_column,
        cache_file=args.cache_file,
    )
    scored.save_to_disk(args.out)
    print(f"wrote {len(scored)} pairs with `{args.margin_column}` to {args.out}")


def _score_teachers(args: argparse.Namespace) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_margin.data.teacher_scoring import score_with_teachers

    dataset = _load_rows(args.dataset)
    teachers = [
        (AutoModelForSequenceClassification.from_pretrained(t), AutoTokenizer.from_pretrained(t)) for t in args.teacher
    ]
    scored = score_with_teachers(
        dataset,
        teachers,
        query_column=args.query_column,
        teacher_column=args.teacher_column,
        aggregation=args.aggregation,
        batch_size=args.batch_size,
        max_length=args.max_length,
        cache_file=args.cache_file,
    )
    scored.save_to_disk(args.out)
    print(f"wrote {len(scored)} rows with `{args.teacher_column}` ({len(teachers)} teacher(s)) to {args.out}")


def _plot_entanglement(args: argparse.Namespace) -> None:
    from hf_margin.diagnostics.plots import plot_entanglement

    out = Path(args.out) if args.out else Path(args.run) / "gradient_entanglement.png"
    print(f"wrote {plot_entanglement(args.run, out)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-margin", description="Margin-based training objectives for the Hugging Face stack."
    )
    parser.add_argument("--version", action="version", version=f"hf-margin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="print the catalogue of methods")
    listing.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    listing.set_defaults(handler=_list)

    demo = commands.add_parser("demo", help="run each implemented method against its baseline on real data")
    demo.add_argument("--only", nargs="+", metavar="NAME", help="run only these entries (see --list)")
    demo.add_argument("--all", action="store_true", help="run every entry (default: the core methods, ~5 min)")
    demo.add_argument("--list", action="store_true", help="list the demo entries and exit")
    demo.add_argument("--out", default="hf_margin_out", help="folder for results.json, results.png and plots")
    demo.add_argument("--data-dir", help="folder with local data sets (e.g. att_faces/); defaults to $HF_MARGIN_DATA")
    demo.set_defaults(handler=_demo)

    score = commands.add_parser(
        "score-preferences", help="add a reward model's margin r(chosen) - r(rejected) to a preference dataset"
    )
    score.add_argument("--dataset", required=True, help="saved dataset folder, or .jsonl/.json/.csv/.parquet file")
    score.add_argument("--reward-model", required=True, help="sequence-classification model folder or hub id")
    score.add_argument("--out", required=True, help="folder for the scored dataset (datasets.save_to_disk)")
    score.add_argument("--batch-size", type=int, default=16)
    score.add_argument("--max-length", type=int, default=512)
    score.add_argument("--margin-column", default="margin")
    score.add_argument(
        "--cache-file",
        help="JSON file of finished batches: an interrupted run resumes from it; a cache written for "
        "another setup (data, model, tokenizer, columns) is refused with the differences named",
    )
    score.set_defaults(handler=_score_preferences)

    teachers = commands.add_parser(
        "score-teachers", help="add cross-encoder teachers' scores of each row's passages (Margin-MSE's labels)"
    )
    teachers.add_argument("--dataset", required=True, help="saved dataset folder, or .jsonl/.json/.csv/.parquet file")
    teachers.add_argument("--teacher", required=True, action="append", help="cross-encoder folder or hub id (repeat)")
    teachers.add_argument("--out", required=True, help="folder for the scored dataset (datasets.save_to_disk)")
    teachers.add_argument("--aggregation", choices=("mean", "median", "max", "min"), default="mean")
    teachers.add_argument("--query-column", default="query")
    teachers.add_argument("--teacher-column", default="teacher_scores")
    teachers.add_argument("--batch-size", type=int, default=32)
    teachers.add_argument("--max-length", type=int, default=256)
    teachers.add_argument(
        "--cache-file",
        help="JSON file of finished batches: an interrupted run resumes from it; a cache written for "
        "another setup (data, model, tokenizer, columns) is refused with the differences named",
    )
    teachers.set_defaults(handler=_score_teachers)

    plot = commands.add_parser(
        "plot-entanglement", help="draw a run's gradient-entanglement measurements (GradientEntanglementCallback)"
    )
    plot.add_argument("run", help="the run's output folder, or its gradient_entanglement.jsonl")
    plot.add_argument("--out", help="PNG to write (default: <run>/gradient_entanglement.png)")
    plot.set_defaults(handler=_plot_entanglement)
    add_train_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except BrokenPipeError:  # e.g. `hf-margin list | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("hf-margin: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("HF_MARGIN_DEBUG"):
            raise
        print(f"hf-margin: error: {_explained(error)}", file=sys.stderr)
        return 1
    return 0


def _explained(error: Exception) -> str:
    """The error's message; for a missing module, which extra installs it."""
    if isinstance(error, ModuleNotFoundError) and error.name:
        module = error.name.partition(".")[0]
        extra = extra_for(module)
        install = f"pip install 'hf-margin[{extra}]'" if extra else f"pip install {module}"
        return f"this command needs `{module}`, which is not installed: {install}"
    return str(error)


if __name__ == "__main__":
    sys.exit(main())
