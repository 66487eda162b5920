"""Face data loaders: the PGM reader, folder discovery and the digits fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hf_margin.demo.data.faces import find_att_faces, load_att_faces, load_digits_as_identities, read_pgm


def _write_pgm(path: Path, pixels: np.ndarray, comment: bool = False) -> None:
    header = (
        b"P5\n" + (b"# made by a test\n" if comment else b"") + f"{pixels.shape[1]} {pixels.shape[0]}\n255\n".encode()
    )
    path.write_bytes(header + pixels.astype(np.uint8).tobytes())


def _fake_orl(root: Path, subjects: int = 3, images: int = 2) -> Path:
    folder = root / "att_faces"
    for s in range(1, subjects + 1):
        (folder / f"s{s}").mkdir(parents=True)
        for i in range(1, images + 1):
            _write_pgm(folder / f"s{s}" / f"{i}.pgm", np.full((4, 3), 10 * s + i))
    return folder


def test_read_pgm_with_and_without_comments(tmp_path: Path) -> None:
    pixels = np.arange(12, dtype=np.uint8).reshape(4, 3) * 20
    for comment in (False, True):
        _write_pgm(tmp_path / "a.pgm", pixels, comment)
        np.testing.assert_array_equal(read_pgm(tmp_path / "a.pgm"), pixels)


def test_read_pgm_rejects_other_formats(tmp_path: Path) -> None:
    (tmp_path / "b.pgm").write_bytes(b"P2\n1 1\n255\n0\n")
    with pytest.raises(ValueError, match="not an 8-bit binary PGM"):
        read_pgm(tmp_path / "b.pgm")


def test_find_and_load_orl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fake_orl(tmp_path)
    monkeypatch.delenv("HF_MARGIN_DATA", raising=False)
    assert find_att_faces(tmp_path) == folder
    assert find_att_faces(folder) == folder
    assert find_att_faces(tmp_path / "nowhere") is None
    monkeypatch.setenv("HF_MARGIN_DATA", str(tmp_path))
    assert find_att_faces() == folder
    data = load_att_faces(folder)
    assert data.images.shape == (6, 4, 3) and data.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert data.images[3, 0, 0] == 22 and data.num_identities == 3


def test_load_orl_from_an_empty_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no ORL subject folders"):
        load_att_faces(tmp_path)


def test_digits_fallback() -> None:
    pytest.importorskip("sklearn")
    data = load_digits_as_identities()
    assert data.images.shape == (1797, 8, 8) and data.images.dtype == np.uint8
    assert data.num_identities == 10 and data.images.max() == 255


def test_cap_per_identity_keeps_order_and_caps() -> None:
    from hf_margin.demo.data.faces import IdentityImages, cap_per_identity

    data = IdentityImages(np.arange(10).reshape(10, 1, 1).astype(np.uint8), np.array([0] * 6 + [1] * 4), "toy")
    capped = cap_per_identity(data, 3)
    assert np.bincount(capped.labels).tolist() == [3, 3]
    assert (np.diff(capped.images.ravel().astype(int)) > 0).all()


def test_load_identities_reads_orl_falls_back_to_digits_and_rejects_a_wrong_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hf_margin.demo.data.faces import load_identities

    pytest.importorskip("sklearn")
    monkeypatch.delenv("HF_MARGIN_DATA", raising=False)
    _fake_orl(tmp_path / "data")
    assert load_identities(tmp_path / "data").name == "ORL faces"
    assert load_identities().name == "sklearn digits"  # nothing given: the digits, as documented
    with pytest.raises(FileNotFoundError, match=r"no ORL faces under data_dir=.*nowhere.*att_faces/"):
        load_identities(tmp_path / "nowhere")
    monkeypatch.setenv("HF_MARGIN_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=r"HF_MARGIN_DATA=.*elsewhere"):
        load_identities()
    monkeypatch.setenv("HF_MARGIN_DATA", str(tmp_path / "data"))  # faces there, but a wrong data_dir still fails
    with pytest.raises(FileNotFoundError, match=r"data_dir=.*nowhere"):
        load_identities(tmp_path / "nowhere")
