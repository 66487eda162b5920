"""Evidence experiment 6: the bookkeeping with the training replaced by a stand-in (records, pairing, retention,
restart, errors), the pieces on the real EfficientNet-lite0 (its tail reproduces the untouched network, LoRA and
PETAL start equal to the model they adapt), and one tiny real run on synthetic faces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hf_margin.demo import DemoContext
from hf_margin.demo.data import faces
from hf_margin.demo.evidence import petal_strong as evidence
from hf_margin.demo.evidence.petal_strong import (
    FULL,
    IMAGENET,
    LORA,
    METHODS,
    PETAL,
    START,
    StrongBackboneSetup,
    split_people,
)

pytest.importorskip("peft")

HR, LR_HR = "HR-HR TAR@FAR=0.01", "LR-HR TAR@FAR=0.01"
GAIN = {IMAGENET: -0.2, START: 0.0, FULL: 0.1, LORA: 0.15, PETAL: 0.2}


def _synthetic_faces(people: int = 12, per: int = 4, name: str = "ORL faces") -> faces.IdentityImages:
    """Each person a random face-sized pattern, each image of them that pattern plus noise."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(people), per)
    images = rng.uniform(30, 220, size=(people, 40, 36))[labels] + rng.normal(0, 20, size=(len(labels), 40, 36))
    return faces.IdentityImages(images.clip(0, 255).astype(np.uint8), labels, name)


def _stand_ins(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Faces, features and training replaced: each method scores a fixed gain over the seed's level."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(faces, "load_identities", lambda data_dir: _synthetic_faces())
    monkeypatch.setattr(evidence, "frozen_features", lambda data, setup: ("backbone", "features"))
    monkeypatch.setattr(evidence, "seed_data", lambda features, setup, seed: seed)
    monkeypatch.setattr(evidence, "start_model", lambda backbone, seed, setup, _: ("start", 2.0))

    def scores(level: float) -> dict[str, float]:
        values = {HR: 0.8 + level / 4, LR_HR: 0.3 + level, "LR-LR TAR@FAR=0.01": 0.4 + level}
        return values | {k.replace("TAR@FAR=0.01", "accuracy"): v for k, v in values.items()}

    monkeypatch.setattr(evidence, "verify", lambda model, seed, petal: scores(0.05 * seed))

    def fit_and_verify(method: str, backbone: Any, start: Any, seed: int, setup: Any, _: int) -> Any:
        calls.append((method, seed))
        return scores(0.05 * seed + GAIN[method]), {"seconds": 3.0, "trainable_parameters": 10.0}

    monkeypatch.setattr(evidence, "fit_and_verify", fit_and_verify)
    return calls


def test_records_summary_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stand_ins(monkeypatch)
    context = DemoContext(out_dir=tmp_path)
    rows = evidence.run(context, StrongBackboneSetup(seeds=3))
    everything = [(m, s) for s in range(3) for m in (IMAGENET, START, *METHODS)]
    assert calls == everything
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [(r["method"], r["seed"]) for r in records] == everything
    by_key = {(r["method"], r["seed"]): r for r in records}
    assert by_key[(START, 1)]["seconds"] == 2.0 and by_key[(START, 1)]["HR-HR retention"] == pytest.approx(1.0)
    assert by_key[(FULL, 2)]["HR-HR retention"] == pytest.approx((0.8 + 0.2 / 4) / (0.8 + 0.1 / 4))
    results = json.loads((tmp_path / "summary.json").read_text())["results"]
    petal = results[PETAL]
    assert petal["seeds"] == [0, 1, 2] and petal[LR_HR]["mean"] == pytest.approx(0.55)
    assert petal[f"{LR_HR} minus {LORA}"]["mean"] == pytest.approx(0.05)
    assert petal[f"{LR_HR} minus {LORA}"]["verdict"] == "better"
    assert petal[f"{LR_HR} minus {FULL}"]["mean"] == pytest.approx(0.1)
    assert petal[f"{HR} minus {START}"]["mean"] == pytest.approx(0.05)
    assert results[IMAGENET][f"{LR_HR} minus {FULL}"]["verdict"] == "worse"
    assert f"{LR_HR} minus {LORA}" not in results[LORA]  # a method is not paired with itself
    assert len(rows) == 3 * 3 and all("(n=3)" in row.note for row in rows)
    assert {(row.method, row.baseline) for row in rows} == {(PETAL, LORA), (PETAL, FULL), (LORA, FULL)}

    evidence.run(context, StrongBackboneSetup(seeds=3))  # a restart trains nothing more
    assert len(calls) == len(everything)
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    (tmp_path / "records.jsonl").write_text("\n".join(lines[:-2]) + "\n")  # stopped during seed 2
    evidence.run(context, StrongBackboneSetup(seeds=3))
    assert calls[len(everything) :] == [(LORA, 2), (PETAL, 2)]


def test_only_the_chosen_methods_and_both_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stand_ins(monkeypatch)
    evidence.run(DemoContext(out_dir=tmp_path), StrongBackboneSetup(seeds=1, methods=(PETAL,)))
    assert calls == [(IMAGENET, 0), (START, 0), (PETAL, 0)]


def test_split_is_disjoint_and_seeded() -> None:
    held, trained = split_people(40, 10, seed=3)
    assert len(held) == 10 and len(trained) == 30 and not set(held) & set(trained)
    assert (split_people(40, 10, seed=3)[0] == held).all()
    assert not (split_people(40, 10, seed=4)[0] == held).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": ("DoRA",)}, r"unknown `methods` \['DoRA'\]"),
        ({"seeds": 0}, "`seeds` must be >= 1"),
        ({"frozen_blocks": 16}, r"`frozen_blocks` must be in \[0, 15\]"),
        ({"lr_factors": (1, 4)}, "`lr_factors`"),
        ({"held_out": 11}, r"`held_out` must be in \[2, 10\]"),
    ],
)
def test_bad_setup_is_an_error_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], message: str
) -> None:
    _stand_ins(monkeypatch)
    with pytest.raises(ValueError, match=message):
        evidence.run(DemoContext(out_dir=tmp_path), StrongBackboneSetup(**changes))


def test_digits_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stand_ins(monkeypatch)
    monkeypatch.setattr(faces, "load_identities", lambda data_dir: _synthetic_faces(name="digits"))
    with pytest.raises(ValueError, match=r"needs the ORL faces.*`data_dir`"):
        evidence.run(DemoContext(out_dir=tmp_path), StrongBackboneSetup())


TINY = StrongBackboneSetup(
    seeds=1, held_out=3, image_height=32, image_width=32, hr_epochs=1, epochs=1, batch_size=8, lr_factors=(2, 4)
)


@pytest.fixture(scope="module")
def real_features() -> tuple[Any, evidence.FaceFeatures]:
    pytest.importorskip("efficientnet_lite_pytorch")
    return evidence.frozen_features(_synthetic_faces(people=8), TINY)


@pytest.mark.heavy
def test_tail_is_the_untouched_network_and_adapters_start_at_it(
    real_features: tuple[Any, evidence.FaceFeatures],
) -> None:
    backbone, features = real_features
    from hf_margin.demo.data.pretrained import grey_to_efficientnet_input

    images = grey_to_efficientnet_input(torch.from_numpy(_synthetic_faces(people=8).images), (32, 32))
    with torch.no_grad():
        reference = backbone.extract_features(images).mean((2, 3))
        tail = evidence.Tail(backbone, TINY.frozen_blocks, classes=5).eval()
        torch.testing.assert_close(tail(features.maps["HR"]), reference, rtol=1e-4, atol=1e-5)
        quality = torch.full((len(images),), 0.3)
        for method in METHODS:
            model = evidence.adapt(method, tail, TINY).eval()
            extra = {"petal_quality": quality} if method == PETAL else {}
            torch.testing.assert_close(model(features.maps["HR"], **extra), reference, rtol=1e-4, atol=1e-5)


@pytest.mark.heavy
def test_tiny_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_features: Any) -> None:
    monkeypatch.setattr(faces, "load_identities", lambda data_dir: _synthetic_faces(people=8))
    monkeypatch.setattr(evidence, "frozen_features", lambda data, setup: real_features)
    evidence.run(DemoContext(out_dir=tmp_path), TINY)
    records = {r["method"]: r for r in map(json.loads, (tmp_path / "records.jsonl").read_text().splitlines())}
    assert list(records) == [IMAGENET, START, *METHODS]
    assert all(0.0 <= r[k] <= 1.0 for r in records.values() for k in evidence.METRICS[:6])
    trainable = {m: records[m]["trainable_parameters"] for m in METHODS}
    assert 0 < trainable[LORA] < trainable[PETAL] < trainable[FULL]  # PETAL: two rank-r branches per layer
    assert records[START]["HR-HR retention"] == pytest.approx(1.0) and records[START]["seconds"] > 0
    start_hr = records[START][HR]
    assert records[FULL]["HR-HR retention"] == pytest.approx(records[FULL][HR] / start_hr)


def test_hf_margin_train_finds_the_grouped_recipe(tmp_path: Path) -> None:
    from hf_margin.recipes_cli import build_command, known_recipes, recipes_root

    assert "evidence/petal_strong" in known_recipes(recipes_root())
    command = build_command("evidence/petal_strong", overrides=["--seeds", "3", "--out_dir", str(tmp_path / "o")])
    assert command[1].endswith("recipes/evidence/petal_strong/adapt_low_resolution.py")
    assert command[2].endswith("recipes/evidence/petal_strong/config.yaml") and command[-4:-2] == ["--seeds", "3"]
