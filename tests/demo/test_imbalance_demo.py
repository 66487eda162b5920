"""The imbalance demo entry: each method's loss, symmetric noise, the table rows, and tiny real runs of both
tasks (heavy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hf_margin.demo import DemoContext
from hf_margin.demo import imbalance as demo
from hf_margin.losses import ALDRKLLoss, AnyLoss, AUCMarginLoss, CompSumLoss, FocalLoss, LDAMLoss, LDRKLLoss, ZLoss


def test_each_method_gets_its_loss() -> None:
    losses = {m: demo.make_loss(m, [90, 10], 100, 2) for m in demo.METHODS}
    assert isinstance(losses["CE"], FocalLoss) and losses["CE"].gamma == 0 and losses["CE"].weight is None
    assert losses["class-balanced CE"].weight is not None and losses["class-balanced CE"].weight[1] > 1
    assert isinstance(losses["LDAM-DRW"], LDAMLoss) and isinstance(losses["AUC-M"], AUCMarginLoss)
    assert isinstance(losses["AnyLoss-F1"], AnyLoss) and isinstance(losses["LDR-KL"], LDRKLLoss)
    assert isinstance(losses["ALDR-KL"], ALDRKLLoss) and losses["ALDR-KL"].lambdas.shape == (100,)
    assert isinstance(losses["comp-sum GCE"], CompSumLoss) and losses["comp-sum GCE"].tau == 1.7
    assert isinstance(losses["Z-loss"], ZLoss)
    logits, labels = torch.randn(6, 2), torch.tensor([0, 1, 0, 1, 1, 0])
    penalised = losses["CE + log-Z penalty"](logits, labels)
    expected = F.cross_entropy(logits, labels) + 1e-4 * torch.logsumexp(logits, dim=1).pow(2).mean()
    torch.testing.assert_close(penalised, expected)
    one_vs_rest = demo.make_loss("AUC-M", [5] * 10, 50, 10)
    assert isinstance(one_vs_rest, AUCMarginLoss) and one_vs_rest.alpha.shape == (10,)
    with pytest.raises(ValueError, match="unknown method"):
        demo.make_loss("hinge", [1, 1], 2, 2)


def test_symmetric_noise_flips_the_share_to_other_classes() -> None:
    labels = torch.arange(10).repeat(1000)
    noisy = demo.with_noise(labels, 0.2, 10, seed=0)
    flipped = noisy != labels
    assert 0.18 < flipped.float().mean() < 0.22
    assert torch.bincount(noisy[flipped & (labels == 3)], minlength=10)[3] == 0, "a flip never keeps the class"
    assert torch.equal(demo.with_noise(labels, 0.0, 10, seed=0), labels)


def test_rows_compare_with_ce_at_the_same_noise() -> None:
    values = {"AUROC": 0.8, "F1": 0.3, "balanced accuracy": 0.6}
    results = {"CE": values, "focal": values, "CE (20% noise)": values, "LDR-KL (20% noise)": values}
    rows = demo.rows_from_results(results, dict.fromkeys(results, 1.0), "RT")
    assert {(r.method, r.baseline) for r in rows} == {("focal", "CE"), ("LDR-KL (20% noise)", "CE (20% noise)")}
    assert len(rows) == 6


@pytest.mark.heavy
@pytest.mark.parametrize("task", ["text", "images"])
def test_tiny_real_run(task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_MARGIN_CACHE", str(tmp_path / "cache"))
    methods = ("CE", "AUC-M", "ALDR-KL") if task == "text" else ("CE", "LDAM-DRW", "generalized focal")
    ratio = 0.05 if task == "text" else 0.01
    setup = demo.ImbalanceSetup(task=task, methods=methods, noise=(0.2,), ratio=ratio, steps=4, text_rows=300)
    rows = demo.run(DemoContext(out_dir=tmp_path), setup)
    report = json.loads((tmp_path / f"imbalance_{task}.json").read_text())
    assert set(report["results"]) == {*methods, "CE (20% noise)", "ALDR-KL (20% noise)"} - (
        {"ALDR-KL (20% noise)"} if task == "images" else set()
    )
    assert len(rows) == 3 * (len(report["results"]) - 2) and all(0 <= r.ours <= 1 for r in rows)
    if task == "images":
        assert report["train_counts"][0] == 120 and report["train_counts"][9] == 1
