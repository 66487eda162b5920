"""Input checks shared by every method: each error names the argument, what was expected and what came in."""

from __future__ import annotations

import numbers

import numpy as np
import torch


def check_embeddings(embeddings: object, embedding_size: int | None = None, name: str = "embeddings") -> None:
    """Raise unless `embeddings` is a non-empty floating tensor of shape (batch, embedding_size)."""
    if not isinstance(embeddings, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of shape (batch, dim), got {type(embeddings).__name__}")
    if not embeddings.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {embeddings.dtype}")
    if embeddings.dim() != 2:
        raise ValueError(f"`{name}` must have shape (batch, dim), got shape {tuple(embeddings.shape)}")
    if embeddings.shape[0] == 0:
        raise ValueError(f"`{name}` is an empty batch (shape {tuple(embeddings.shape)}); need at least one row")
    if embedding_size is not None and embeddings.shape[1] != embedding_size:
        raise ValueError(f"`{name}` must have shape (batch, {embedding_size}), got shape {tuple(embeddings.shape)}")


def check_label_vector(labels: object, rows: int, name: str = "labels", kind: str = "labels") -> torch.Tensor:
    """Raise unless `labels` is an integer tensor (not bool) of shape (rows,); return it.

    The one check for every "an integer label per row" input (classes, identities, groups); `kind` names what
    the integers are in the messages.
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of {kind} of shape ({rows},), got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"`{name}` must hold integer {kind} (torch.long), got dtype {labels.dtype}")
    if tuple(labels.shape) != (rows,):
        raise ValueError(f"`{name}` must have shape ({rows},) (one per row), got shape {tuple(labels.shape)}")
    return labels


def check_class_labels(labels: object, batch_size: int, num_classes: int, name: str = "labels") -> None:
    """Raise unless `labels` is an integer tensor of shape (batch_size,) with values in [0, num_classes)."""
    checked = check_label_vector(labels, batch_size, name, kind="class indices")
    if checked.numel() == 0:
        return
    low, high = int(checked.min()), int(checked.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"`{name}` must lie in [0, {num_classes - 1}], got values in [{low}, {high}]")


def check_pair_masks(similarities: object, **masks: object) -> None:
    """Raise unless `similarities` is a floating (rows, refs) matrix and each mask (by keyword) is bool of its shape.

    Example:
        >>> check_pair_masks(sim, pos_mask=pos, neg_mask=neg)
    """
    if not isinstance(similarities, torch.Tensor) or not similarities.is_floating_point() or similarities.dim() != 2:
        got = (
            f"{similarities.dtype} of shape {tuple(similarities.shape)}"
            if isinstance(similarities, torch.Tensor)
            else type(similarities).__name__
        )
        raise ValueError(f"`similarities` must be a floating (rows, refs) matrix, got {got}")
    for name, mask in masks.items():
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != similarities.shape:
            found = (
                f"{mask.dtype} of shape {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
            )
            raise ValueError(f"`{name}` must be a bool tensor of shape {tuple(similarities.shape)}, got {found}")


def check_positive(value: float, name: str) -> None:
    """Raise unless `value` is a finite number > 0."""
    if not value > 0 or value == float("inf"):
        raise ValueError(f"`{name}` must be a finite number > 0, got {value}")


def check_in_range(value: float, name: str, low: float, high: float) -> None:
    """Raise unless low <= value <= high."""
    if not low <= value <= high:
        raise ValueError(f"`{name}` must lie in [{low}, {high}], got {value}")


def check_positive_int(value: object, name: str) -> None:
    """Raise unless `value` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> None:
    """Raise unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_numbers(**values: object) -> None:
    """Raise TypeError unless every keyword's value is a real number (int or float, not bool), naming it.

    Call it before the range checks, which would otherwise fail with an unnamed comparison error on a string.

    Example:
        >>> check_numbers(margin=margin, scale=scale)
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"`{name}` must be a real number (int or float), got {type(value).__name__} {value!r}")


def check_number_in_range(value: object, name: str, low: float, high: float) -> None:
    """Raise TypeError unless `value` is a real number, then ValueError unless low <= value <= high (NaN fails)."""
    check_numbers(**{name: value})
    check_in_range(value, name, low, high)  # type: ignore[arg-type]


def check_integers(**values: object) -> None:
    """Raise TypeError unless every keyword's value is an int (not bool), naming it; pair with `check_positive_int`.

    Example:
        >>> check_integers(folds=folds, seed=seed)
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}")


def check_finite(values: torch.Tensor | np.ndarray, name: str) -> None:
    """Raise ValueError naming `name` and how many of its entries are NaN or infinite.

    For evaluation-side code (metrics, diagnostics) only: it reads the count on the host, a device sync, which the
    non-finite policy keeps out of training steps (there NaN propagates into the loss instead).
    """
    if isinstance(values, torch.Tensor):
        bad, total = int((~torch.isfinite(values.detach())).sum()), values.numel()
    else:
        bad, total = int(np.count_nonzero(~np.isfinite(values))), values.size
    if bad:
        raise ValueError(
            f"`{name}` has {bad} non-finite entries (NaN or inf) out of {total}: a diverged model or corrupted "
            "data; no figure is computed from them"
        )


def check_flags(**values: object) -> None:
    """Raise TypeError unless every keyword's value is a bool (or numpy bool), naming it: ``bool("no")`` is True.

    Example:
        >>> check_flags(plus=plus, bias=bias)
    """
    for name, value in values.items():
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"`{name}` must be a bool (True or False), got {type(value).__name__} {value!r}")


def check_positive_number(value: object, name: str) -> None:
    """:func:`check_positive` after :func:`check_numbers`: a wrongly typed value is a TypeError naming it."""
    check_numbers(**{name: value})
    check_positive(value, name)  # type: ignore[arg-type]
