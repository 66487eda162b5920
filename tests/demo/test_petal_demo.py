"""The PETAL demo entry on a tiny budget (digits, 16x16, one epoch each): it runs end to end, caches the
pretrained backbone and reports every method and protocol. The real comparison is recipes/petal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("peft")
from hf_margin.demo import DemoContext
from hf_margin.demo import petal as petal_demo


def test_without_the_faces_it_says_what_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_MARGIN_DATA", raising=False)
    rows = petal_demo.run(DemoContext(out_dir=tmp_path, data_dir=None))
    assert len(rows) == 1 and not rows[0].measured
    assert "ORL faces" in rows[0].note and "--data-dir" in rows[0].note and "HF_MARGIN_DATA" in rows[0].note
    assert not (tmp_path / "petal.json").exists()


def test_tiny_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_MARGIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_MARGIN_DATA", raising=False)
    # Ten images of each digit stand in for the faces here, only to run the code end to end (the entry refuses them).
    digits = petal_demo.load_identities(None)
    keep = np.concatenate([np.flatnonzero(digits.labels == k)[:10] for k in range(10)])
    stand_in = petal_demo.IdentityImages(digits.images[keep], digits.labels[keep], digits.name)
    monkeypatch.setattr(petal_demo, "load_faces", lambda _: stand_in)
    setup = petal_demo.PetalSetup(image_height=16, image_width=16, pretrain_epochs=1, finetune_epochs=1, rank=2)
    context = DemoContext(out_dir=tmp_path, data_dir=None)
    rows = petal_demo.run(context, setup)
    assert len(rows) == 2 * len(petal_demo.PROTOCOLS)
    assert {r.baseline for r in rows} == {"LoRA", "full fine-tuning"} and {r.method for r in rows} == {"PETAL"}
    assert all(0 <= r.ours <= 1 and 0 <= r.baseline_value <= 1 for r in rows)
    report = json.loads((tmp_path / "petal.json").read_text())["results"]
    assert set(report) == {"pretrained (no fine-tuning)", "full fine-tuning", "LoRA", "PETAL"}
    assert report["full fine-tuning"]["trainable_share"] == pytest.approx(1.0)
    assert 0 < report["LoRA"]["trainable_share"] < report["PETAL"]["trainable_share"] < 1
    assert "| PETAL |" in (tmp_path / "petal.md").read_text()
    assert len(list((tmp_path / "cache").glob("petal_demo_vit_*"))) == 1  # the pretrained ViT is cached


def test_degrade_and_pair_scores() -> None:
    images = torch.rand(3, 1, 16, 16)
    assert petal_demo.degrade(images, 1) is images
    assert petal_demo.degrade(images, 4).shape == images.shape
    embeddings = torch.eye(3)
    scores, same = petal_demo.cross_pair_scores(embeddings, embeddings, torch.tensor([0, 0, 1]), same_set=True)
    assert len(scores) == 3 and same.tolist() == [True, False, False]  # pairs (0,1), (0,2), (1,2)
    scores, same = petal_demo.cross_pair_scores(embeddings, embeddings, torch.tensor([0, 0, 1]), same_set=False)
    assert len(scores) == 6  # every probe-gallery pair except a photo against its own copy
