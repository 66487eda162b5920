"""Check the dataset columns a trainer needs once, when it is built, rather than when a bad row is batched.

A `datasets.Dataset` is checked over its Arrow columns with `pyarrow.compute` (vectorised, no Python loop over
rows): presence, type, missing values, the length of list cells, finiteness and a range. Rows are numbered as the
dataset yields them (after `select`/`shuffle`), and the error names the trainer, the column, the dataset argument,
the first bad rows and the first bad value. Streaming (`IterableDataset`) and torch datasets are not inspected
(their rows exist only when read); a `datasets.Dataset` with a custom transform is only checked for being empty,
since the transform decides what the rows become. Data problems raise ValueError.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Literal

_SHOWN_ROWS = 10


@dataclass(frozen=True)
class ColumnCheck:
    """What one column must hold.

    Attributes:
        column: its name.
        kind: `"text"` (a string per row), `"number"` (an integer or float per row) or `"numbers"` (a list of them).
        width: for `"numbers"`, the list length every row must have (None: any).
        width_reason: said after the width in the error, e.g. "one per passage column".
        finite: for numbers, refuse NaN and +-inf.
        bounds: for numbers, the closed range they must lie in, and the reason said in the error.
        required: whether a dataset without the column is refused (if not, the column is checked when present).
        hint: said after the error about a missing column, e.g. how to do without it.
    """

    column: str
    kind: Literal["text", "number", "numbers"]
    width: int | None = None
    width_reason: str = ""
    finite: bool = True
    bounds: tuple[float, float, str] | None = None
    required: bool = True
    hint: str = ""


def _bad_rows(mask: Any, parents: Any = None) -> Any:
    """The rows (ascending) where a boolean Arrow array is true; with `parents` (each flattened list value's row),
    the rows with at least one flagged value."""
    import pyarrow.compute as pc

    return pc.indices_nonzero(mask) if parents is None else pc.unique(pc.filter(parents, mask))


class _Refusal:
    """Builds the errors about one column: its wrong type, or the rows that break a requirement."""

    def __init__(self, trainer: str, name: str, column: Any, check: ColumnCheck) -> None:
        self.trainer, self.name, self.column, self.check = trainer, name, column, check

    def type(self, expected: str) -> ValueError:
        return ValueError(
            f"{self.trainer}: `{self.check.column}` must hold {expected}, got {self.column.type} in `{self.name}`"
        )

    def rows(self, requirement: str, found: str, bad: Any) -> ValueError | None:
        if not len(bad):
            return None
        rows = bad.slice(0, _SHOWN_ROWS).to_pylist()
        more = f" and {len(bad) - len(rows)} more" if len(bad) > len(rows) else ""
        return ValueError(
            f"{self.trainer}: `{self.check.column}` {requirement}; {found} at rows {rows}{more} of `{self.name}` "
            f"(row {rows[0]}: {self.column[rows[0]].as_py()!r})"
        )


def _numeric(value_type: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(value_type) or pa.types.is_floating(value_type))


def _problems(column: Any, refusal: _Refusal) -> Iterator[ValueError | None]:
    """One Arrow column's checks in order, lazily: a wrong type, missing values, list lengths, finiteness, range."""
    import pyarrow as pa
    import pyarrow.compute as pc

    check, kind = refusal.check, column.type
    if check.kind == "text" and not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        yield refusal.type("text")
    if check.kind == "number" and not _numeric(kind):
        yield refusal.type("numbers")
    is_list = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    if check.kind == "numbers" and not (is_list and _numeric(kind.value_type)):
        yield refusal.type("lists of numbers")
    yield refusal.rows("must have no missing values", "missing", _bad_rows(pc.is_null(column)))
    if check.kind == "text":
        return
    values, parents = column, None
    if check.kind == "numbers":
        column = refusal.column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        values, parents = pc.list_flatten(column), pc.list_parent_indices(column)
        yield refusal.rows("must have no missing values", "missing", _bad_rows(pc.is_null(values), parents))
        if check.width is not None:
            lengths, reason = pc.list_value_length(column), f" ({check.width_reason})" if check.width_reason else ""
            wrong = _bad_rows(pc.not_equal(lengths, check.width))
            found = str(lengths[wrong[0].as_py()].as_py()) if len(wrong) else ""
            yield refusal.rows(f"must hold {check.width} numbers per row{reason}", found, wrong)
    if check.finite and pa.types.is_floating(values.type):
        yield refusal.rows("must be finite", "NaN or inf", _bad_rows(pc.invert(pc.is_finite(values)), parents))
    if check.bounds is not None:
        low, high, why = check.bounds
        outside = _bad_rows(pc.or_(pc.less(values, low), pc.greater(values, high)), parents)
        yield refusal.rows(f"must lie in [{low:g}, {high:g}] ({why})", "outside", outside)


def check_dataset_columns(
    dataset: Any, trainer: str, checks: Sequence[ColumnCheck], name: str = "train_dataset"
) -> None:
    """Raise a ValueError if `dataset` is empty or one of its columns fails its `ColumnCheck`.

    Args:
        dataset: a `datasets.Dataset` (checked), a dict of them (each checked, named ``name['split']``), None or
            a dataset of another kind (only checked for being empty when it has a length).
        trainer: the trainer's name, said first in the error.
        checks: the columns and what they must hold.
        name: the argument the dataset was given as (``train_dataset``, ``eval_dataset``).
    """
    if dataset is None:
        return
    if isinstance(dataset, dict):
        for split, part in dataset.items():
            check_dataset_columns(part, trainer, checks, f"{name}[{split!r}]")
        return
    datasets = sys.modules.get("datasets")
    streaming = datasets is not None and isinstance(dataset, datasets.IterableDataset)
    if not streaming and isinstance(dataset, Sized) and len(dataset) == 0:
        raise ValueError(f"{trainer}: `{name}` is empty; it needs at least one row")
    if datasets is None or not isinstance(dataset, datasets.Dataset) or dataset.format.get("type") == "custom":
        return
    arrow = dataset.with_format("arrow")
    for check in checks:
        if check.column not in dataset.column_names:
            if not check.required:
                continue
            hint = f" {check.hint}" if check.hint else ""
            raise ValueError(
                f"{trainer} needs a `{check.column}` column in `{name}`; it has {dataset.column_names}.{hint}"
            )
        column = arrow[check.column]
        error = next((e for e in _problems(column, _Refusal(trainer, name, column, check)) if e is not None), None)
        if error is not None:
            raise error
