"""Reuters-21578 grain/corn articles (ModApte, one fifth) from the Debian `weka` package's example files.

A small real multi-label text set: every article is labelled grain and/or corn (44 of the 45 corn training
articles are also grain). Nothing installs it for you: fetch the package's files once with

    apt-get download weka && dpkg -x weka_*.deb DIR

and pass DIR (or set ``HF_MARGIN_WEKA_DIR``). No Java is needed; only the ARFF files are read.
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path("usr/share/doc/weka/examples")
LABELS = ("grain", "corn")
_ROW = re.compile(r"'((?:[^'\\]|\\.)*)',(\d)")


@dataclass(frozen=True)
class ReutersGrainCorn:
    """Train and test articles with (grain, corn) multi-hot labels."""

    train_texts: list[str]
    train_labels: list[list[int]]
    test_texts: list[str]
    test_labels: list[list[int]]
    label_names: tuple[str, ...] = LABELS

    @property
    def label_counts(self) -> list[int]:
        """Training articles per label."""
        return [sum(row[j] for row in self.train_labels) for j in range(len(self.label_names))]


def _read(path: Path) -> tuple[list[str], list[int]]:
    rows = _ROW.findall(path.read_text(encoding="latin-1").split("@data", 1)[1])
    return [codecs.decode(text, "unicode_escape") for text, _ in rows], [int(label) for _, label in rows]


def load_reuters_grain_corn(directory: str | Path | None = None) -> ReutersGrainCorn:
    """Read the four ARFF files from the extracted `weka` package (DIR of ``dpkg -x weka_*.deb DIR``)."""
    root = directory or os.environ.get("HF_MARGIN_WEKA_DIR")
    if root is None or not (Path(root) / EXAMPLES / "ReutersGrain-train.arff").is_file():
        raise FileNotFoundError(
            f"the Reuters grain/corn files are not in {root!r}: run `apt-get download weka && dpkg -x weka_*.deb "
            "DIR`, then pass DIR (or set HF_MARGIN_WEKA_DIR)"
        )
    folder = Path(root) / EXAMPLES
    splits = {}
    for split in ("train", "test"):
        texts, grain = _read(folder / f"ReutersGrain-{split}.arff")
        corn_texts, corn = _read(folder / f"ReutersCorn-{split}.arff")
        if corn_texts != texts:
            raise ValueError(f"ReutersGrain-{split} and ReutersCorn-{split} should hold the same articles")
        splits[split] = (texts, [[g, c] for g, c in zip(grain, corn, strict=True)])
    return ReutersGrainCorn(*splits["train"], *splits["test"])
