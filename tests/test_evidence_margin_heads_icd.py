"""Evidence experiment 1 end to end on a tiny synthetic stand-in for the ICD identities (the real run encodes
18,000 texts with MiniLM; its loader is checked on the real data by the recipe): records are appended one per
(head, identities, seed), a restart skips them, the summary pairs each head with its baseline by seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hf_margin.demo import DemoContext
from hf_margin.demo.evidence import margin_heads_icd as evidence
from hf_margin.demo.evidence.margin_heads_icd import FROZEN, IdentityTexts, ManyIdentitiesSetup, split_for_seed
from hf_margin.demo.evidence.records import paired_differences_figure


def _fake_data(monkeypatch: pytest.MonkeyPatch, categories: int = 30, per: int = 5) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(categories, 16))
    labels = np.repeat(np.arange(categories), per)
    features = (centres[labels] + 0.6 * rng.normal(size=(len(labels), 16))).astype(np.float32)
    texts = [f"text {i}" for i in range(len(labels))]
    monkeypatch.setattr(
        evidence, "icd_identities", lambda lo, hi: IdentityTexts(texts, labels, [f"C{i}" for i in range(categories)])
    )
    monkeypatch.setattr(evidence, "cached_minilm_features", lambda texts, path: features)


def test_records_summary_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_data(monkeypatch)
    setup = ManyIdentitiesSetup(
        identities=(5, 20),
        held_out=8,
        seeds=2,
        epochs=2,
        batch_size=16,
        hidden=32,
        embedding_size=16,
        heads=("ArcFace", "Partial FC ArcFace (10% of centres)"),
    )
    context = DemoContext(out_dir=tmp_path)
    rows = evidence.run(context, setup)
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    # softmax (the baseline) is always trained; Partial FC brings its own baseline, ArcFace; plus the frozen reference
    assert len(records) == 2 * 2 * 3 + 2
    assert {r["head"] for r in records} == {"softmax CE", "ArcFace", "Partial FC ArcFace (10% of centres)", FROZEN}
    assert {r["identities"] for r in records if r["head"] == FROZEN} == {0}
    assert all(0.0 <= r["tar@far=0.001"] <= r["tar@far=0.01"] <= 1.0 for r in records)
    summary = json.loads((tmp_path / "summary.json").read_text())["results"]
    assert summary["0"][FROZEN]["seeds"] == [0, 1]
    arcface = summary["20"]["ArcFace"]
    assert arcface["seeds"] == [0, 1] and arcface["baseline"] == "softmax CE"
    values = [r["tar@far=0.01"] for r in records if r["identities"] == 20 and r["head"] == "ArcFace"]
    assert arcface["tar@far=0.01"]["mean"] == pytest.approx(np.mean(values))
    assert arcface["tar@far=0.01"]["low"] <= arcface["tar@far=0.01"]["mean"] <= arcface["tar@far=0.01"]["high"]
    assert summary["5"]["Partial FC ArcFace (10% of centres)"]["baseline"] == "ArcFace"
    assert "tar@far=0.01 minus ArcFace" in summary["5"]["Partial FC ArcFace (10% of centres)"]
    assert len(rows) == 2 * 2 * 2 and all(row.note.startswith("diff ") and "(n=2)" in row.note for row in rows)
    # a restart finds every record done and trains nothing more
    evidence.run(context, setup)
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == len(records)
    assert (tmp_path / "paired_differences.png").stat().st_size > 10_000


def test_same_seed_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_data(monkeypatch)
    setup = ManyIdentitiesSetup(
        identities=(10,), held_out=8, seeds=1, epochs=2, hidden=16, embedding_size=8, heads=("softmax CE",)
    )
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        evidence.run(DemoContext(out_dir=folder), setup)
    a, b = (
        [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in (f / "records.jsonl").open()]
        for f in (first, second)
    )
    assert len(a) == 2 and a == b


def test_split_is_nested_and_disjoint() -> None:
    held_out, order = split_for_seed(50, 10, seed=3)
    assert len(held_out) == 10 and len(order) == 40 and not set(held_out) & set(order)
    again, order_again = split_for_seed(50, 10, seed=3)
    assert (again == held_out).all() and (order_again == order).all()
    assert not (split_for_seed(50, 10, seed=4)[0] == held_out).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"heads": ("NormFace",)}, r"unknown `heads` \['NormFace'\]"),
        ({"identities": (100,)}, r"`identities` must each be in \[2, 22\]"),
        ({"seeds": 0}, "`seeds` must be >= 1"),
    ],
)
def test_bad_setup_is_an_error_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, object], message: str
) -> None:
    _fake_data(monkeypatch)
    setup = ManyIdentitiesSetup(identities=(5,), held_out=8, seeds=1, epochs=1)
    with pytest.raises(ValueError, match=message):
        evidence.run(DemoContext(out_dir=tmp_path), ManyIdentitiesSetup(**{**setup.__dict__, **changes}))


def test_hf_margin_train_finds_the_grouped_recipe(tmp_path: Path) -> None:
    from hf_margin.recipes_cli import build_command, known_recipes, recipes_root

    assert "evidence/margin_heads_icd" in known_recipes(recipes_root())
    command = build_command("evidence/margin_heads_icd", overrides=["--seeds", "3", "--out_dir", str(tmp_path / "o")])
    assert command[1].endswith("recipes/evidence/margin_heads_icd/verify_icd_identities.py")
    assert command[2].endswith("recipes/evidence/margin_heads_icd/config.yaml") and command[-4:-2] == ["--seeds", "3"]


def test_the_paired_differences_figure_draws_each_method_against_its_baseline() -> None:
    def entry(baseline: str, difference: float | None) -> dict[str, object]:
        paired = {"mean": difference, "low": difference - 0.01, "high": difference + 0.01} if difference else None
        return {"baseline": baseline} | ({"tar@far=0.01 minus " + baseline: paired} if paired else {})

    results = {
        "0": {FROZEN: {"baseline": None}},
        "100": {"softmax CE": entry("softmax CE", None), "ArcFace": entry("softmax CE", 0.02)},
        "1500": {"softmax CE": entry("softmax CE", None), "ArcFace": entry("softmax CE", -0.03)},
    }
    fig = paired_differences_figure(results, ["tar@far=0.01"], xlabel="identities", title="t")
    (axis,) = fig.axes
    assert [t.get_text() for t in axis.get_xticklabels()] == ["100", "1500"]  # the untrained setting has no pairs
    (bars,) = [c for c in axis.containers if c.get_label() == "ArcFace - softmax CE"]
    assert list(bars.lines[0].get_ydata()) == [0.02, -0.03]
