"""The trainers' shared column check: what it inspects, what it skips, how it names the bad rows."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")

from hf_margin.trainers._columns import ColumnCheck, check_dataset_columns  # noqa: E402

SCORE = [ColumnCheck("score", "number")]


def test_names_the_first_rows_and_counts_the_rest() -> None:
    data = datasets.Dataset.from_dict({"score": [float("nan")] * 12 + [1.0]})
    with pytest.raises(ValueError, match=r"T: `score` must be finite; NaN or inf at rows \[0, 1, .*, 9\] and 2 more"):
        check_dataset_columns(data, "T", SCORE)


def test_splits_of_a_dataset_dict_are_named() -> None:
    splits = datasets.DatasetDict(
        {"a": datasets.Dataset.from_dict({"score": [1.0]}), "b": datasets.Dataset.from_dict({"score": [None, 2.0]})}
    )
    with pytest.raises(ValueError, match=r"missing at rows \[0\] of `eval_dataset\['b'\]`"):
        check_dataset_columns(splits, "T", SCORE, "eval_dataset")


def test_datasets_it_cannot_read_are_skipped_but_empty_ones_refused() -> None:
    check_dataset_columns([{"score": "not a number"}], "T", SCORE)  # a torch-style dataset: rows exist when read
    transformed = datasets.Dataset.from_dict({"text": ["1.5"]}).with_transform(lambda b: {"score": [1.5]})
    check_dataset_columns(transformed, "T", SCORE)  # the transform decides what the rows become
    check_dataset_columns(datasets.Dataset.from_dict({"score": [1.0]}).to_iterable_dataset(), "T", SCORE)
    with pytest.raises(ValueError, match="T: `train_dataset` is empty"):
        check_dataset_columns([], "T", SCORE)


def test_optional_columns_are_checked_only_when_present() -> None:
    optional = [ColumnCheck("score", "number", required=False)]
    check_dataset_columns(datasets.Dataset.from_dict({"other": [1]}), "T", optional)
    with pytest.raises(ValueError, match=r"`score` must hold numbers, got string"):
        check_dataset_columns(datasets.Dataset.from_dict({"score": ["x"]}), "T", optional)
