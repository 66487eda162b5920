"""Score a dataset in batches with a progress bar, resumably: finished batches go to a cache file as they come,
and a rerun with the same cache file continues where the last one stopped.

The cache is keyed on everything that determines the scores: the dataset's fingerprint and a `setup` (the scoring
models' weights, their tokenizers, the token budget, the columns, the aggregation...). A cache made by another
setup is refused with a ValueError that names the file and what differs, rather than rescored over: the file may
hold hours of scoring that the caller meant for that other setup, and silently reusing it would give the new model
the old model's scores. The file is replaced atomically after every batch (a temporary file in the same folder, then
`os.replace`), so an interrupted run leaves the last complete cache; a file that still cannot be read (written by
something else, or cut short by a full disk) is reported with its name and the advice to delete it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

# Values sampled per tensor by `model_fingerprint`: evenly spaced over the flattened tensor, so that fine-tuning
# (which moves every weight) or a different checkpoint of the same architecture changes the fingerprint.
_SAMPLES_PER_TENSOR = 64


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_fingerprint(model: torch.nn.Module) -> str:
    """A cheap, device-independent fingerprint of a model's weights: a hash of every state-dict entry's name, shape
    and dtype and of the exact bytes of up to 64 evenly spaced values of each (moved to the CPU; no full copy).

    It tells apart checkpoints, fine-tuned or merged weights and dtypes (all move every value of a tensor), not an
    edit of a few single weights that the sample misses; hashing every byte would cost a copy of the whole model.
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        if tensor.is_meta or tensor.numel() == 0:
            continue
        flat = tensor.detach().reshape(-1)
        count = min(flat.numel(), _SAMPLES_PER_TENSOR)
        picks = torch.arange(count, device=flat.device) * (flat.numel() - 1) // max(count - 1, 1)  # exact integers
        digest.update(flat[picks].cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A fingerprint of what a tokenizer turns texts into: its full serialisation for a fast tokenizer (vocabulary,
    normaliser, pre-tokeniser, post-processor), else its vocabulary; plus its class, sides and chat template."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Without the padding and truncation state, which every call with `padding=`/`truncation=` overwrites.
        body = json.dumps({k: v for k, v in json.loads(backend.to_str()).items() if k not in ("padding", "truncation")})
    else:
        vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
        body = json.dumps(sorted(vocab.items()))
    extras = [
        type(tokenizer).__name__,
        str(getattr(tokenizer, "padding_side", "")),
        str(getattr(tokenizer, "truncation_side", "")),
        str(getattr(tokenizer, "chat_template", "") or ""),
    ]
    return _digest("\n".join([body, *extras]))


def scorer_identity(model: torch.nn.Module, tokenizer: Any) -> dict[str, str]:
    """A scoring model and its tokenizer as a cache key: the weights' and tokenizer's fingerprints, and the model's
    name (shown when the cache is refused; not compared, since the same weights loaded from another folder, or
    saved after training, give the same scores)."""
    config = getattr(model, "config", None)
    return {
        "name_or_path": str(getattr(config, "_name_or_path", "") or type(model).__name__),
        "weights": model_fingerprint(model),
        "tokenizer": tokenizer_fingerprint(tokenizer),
    }


def _comparable(value: Any) -> Any:
    """`value` without the names that `scorer_identity` records only for messages, as JSON would read it back."""
    if isinstance(value, Mapping):
        return {k: _comparable(v) for k, v in value.items() if k != "name_or_path"}
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    return value


def _differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    return [
        f"{key} was {json.dumps(saved.get(key))} in the cache, is {json.dumps(now.get(key))} now"
        for key in sorted(set(saved) | set(now))
        if _comparable(saved.get(key)) != _comparable(now.get(key))
    ]


def _read_cache(cache: Path) -> dict[str, Any]:
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        saved, reason = None, f"{type(error).__name__}: {error}"
    else:
        reason = "expected an object with `fingerprint` and a `scores` list"
    if not (isinstance(saved, dict) and "fingerprint" in saved and isinstance(saved.get("scores"), list)):
        raise ValueError(
            f"{cache} is not a readable score cache ({reason}); it may be cut short or written by something else: "
            "delete it to score afresh, or pass another `cache_file`"
        )
    return saved


def _write_atomically(cache: Path, payload: dict[str, Any]) -> None:
    """Replace `cache` with `payload` in one step: an interrupted write leaves the previous file, never half of one."""
    handle, temporary = tempfile.mkstemp(prefix=f".{cache.name}.", suffix=".tmp", dir=cache.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(payload, file)
        os.replace(temporary, cache)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def score_in_batches(
    dataset: Any,
    score_batch: Callable[[dict[str, list[Any]]], list[Any]],
    batch_size: int,
    cache_file: str | Path | None = None,
    description: str = "scoring",
    progress: bool = True,
    setup: Mapping[str, Any] | None = None,
) -> list[Any]:
    """One score per row of `dataset` (a `datasets.Dataset`), from `score_batch(rows)` on slices of it.

    Args:
        dataset: the rows; its fingerprint is part of the cache's key.
        score_batch: maps a slice (a dict of column lists) to one JSON-serialisable score per row.
        batch_size: rows per call (not part of the key: it does not change the scores).
        cache_file: where finished scores are kept (None: no caching).
        description, progress: the progress bar's label, and whether to show it.
        setup: JSON-serialisable description of everything else that determines the scores (see
            `scorer_identity`); a cache written with another setup or dataset raises a ValueError naming what differs.
    """
    cache = Path(cache_file) if cache_file is not None else None
    key = {"dataset": dataset._fingerprint, **json.loads(json.dumps(dict(setup or {})))}
    scores: list[Any] = []
    if cache is not None and cache.is_file():
        saved = _read_cache(cache)
        differences = _differences({"dataset": saved["fingerprint"], **saved.get("setup", {})}, key)
        if differences:
            what = "dataset" if saved["fingerprint"] != key["dataset"] else "setup"
            raise ValueError(
                f"{cache} was written for another {what}: {'; '.join(differences)}. Delete it or pass another "
                "`cache_file`"
            )
        scores = saved["scores"]
    for start in tqdm(
        range(len(scores), len(dataset), batch_size), desc=description, disable=not progress, unit="batch"
    ):
        scores.extend(score_batch(dataset[start : start + batch_size]))
        if cache is not None:
            setup_only = {k: v for k, v in key.items() if k != "dataset"}
            _write_atomically(cache, {"fingerprint": key["dataset"], "setup": setup_only, "scores": scores})
    return scores
