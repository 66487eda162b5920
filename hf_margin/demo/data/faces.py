"""Face images with identities: the ORL (AT&T) face database from a local folder, or sklearn's digits.

The ORL database (40 people x 10 images, 92x112 grey PGM, Olivetti Research Laboratory, Cambridge) is a
public data set that users fetch themselves; `find_att_faces` looks in ``--data-dir`` and ``$HF_MARGIN_DATA``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ORL_ENV = "HF_MARGIN_DATA"


@dataclass(frozen=True)
class IdentityImages:
    """Grey images with an identity label each.

    Args:
        images: uint8 array (N, H, W).
        labels: int array (N,) of identity indices 0..K-1.
        name: the data set's name, for reports.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str

    @property
    def num_identities(self) -> int:
        return int(self.labels.max()) + 1


def read_pgm(path: Path) -> np.ndarray:
    """A binary (P5) 8-bit PGM file as a uint8 array (height, width)."""
    data = path.read_bytes()
    fields: list[bytes] = []
    position = 0
    while len(fields) < 4:
        while data[position : position + 1].isspace():
            position += 1
        if data[position : position + 1] == b"#":
            position = data.index(b"\n", position) + 1
            continue
        end = position
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[position:end])
        position = end
    magic, width, height, max_value = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if magic != b"P5" or max_value > 255:
        raise ValueError(f"{path} is not an 8-bit binary PGM (magic {magic!r}, max value {max_value})")
    pixels = np.frombuffer(data, dtype=np.uint8, count=width * height, offset=position + 1)
    return pixels.reshape(height, width)


def find_att_faces(data_dir: str | Path | None = None) -> Path | None:
    """The ORL folder (the one holding s1..s40) under `data_dir`, or under ``$HF_MARGIN_DATA`` when `data_dir` is
    None; None when it is not there."""
    root_text = data_dir if data_dir is not None else os.environ.get(ORL_ENV)
    for root in [Path(root_text)] if root_text else []:
        for candidate in (root, root / "att_faces"):
            if (candidate / "s1" / "1.pgm").is_file():
                return candidate
    return None


def load_identities(data_dir: str | Path | None = None) -> IdentityImages:
    """The ORL faces from `data_dir`, else from ``$HF_MARGIN_DATA``; sklearn's digits (each digit a person) when
    neither is set. A folder that is given but holds no ORL faces is an error, not a silent switch to the digits."""
    path = find_att_faces(data_dir)
    if path is not None:
        return load_att_faces(path)
    if data_dir is not None or os.environ.get(ORL_ENV):
        where = f"data_dir={data_dir}" if data_dir is not None else f"{ORL_ENV}={os.environ[ORL_ENV]}"
        raise FileNotFoundError(
            f"no ORL faces under {where}: point it at the folder holding att_faces/ (s1/1.pgm ... s40/10.pgm; the "
            "AT&T / ORL face database is not shipped, fetch it yourself), or unset it to use sklearn's digits"
        )
    return load_digits_as_identities()


def load_att_faces(path: str | Path) -> IdentityImages:
    """All images of the ORL face database at `path` (a folder with s1..s40), labels 0..39 by subject."""
    root = Path(path)
    subjects = sorted((d for d in root.glob("s*") if d.is_dir()), key=lambda d: int(d.name[1:]))
    if not subjects:
        raise FileNotFoundError(f"no ORL subject folders (s1, s2, ...) under {root}")
    images, labels = [], []
    for label, subject in enumerate(subjects):
        for file in sorted(subject.glob("*.pgm"), key=lambda f: int(f.stem)):
            images.append(read_pgm(file))
            labels.append(label)
    return IdentityImages(np.stack(images), np.asarray(labels), "ORL faces")


def load_digits_as_identities() -> IdentityImages:
    """sklearn's bundled 8x8 digits (1,797 images), each digit an 'identity': the fallback when ORL is absent."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    return IdentityImages(images, digits.target.astype(np.int64), "sklearn digits")


def cap_per_identity(data: IdentityImages, cap: int, seed: int = 0) -> IdentityImages:
    """At most `cap` images per identity (a fixed random choice), keeping the original order."""
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(data.labels == k))[:cap] for k in range(data.num_identities)])
    keep.sort()
    return IdentityImages(data.images[keep], data.labels[keep], data.name)
