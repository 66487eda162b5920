"""Evidence experiment 2's bookkeeping with training and judging replaced by stand-ins (the real ones are the MADPO
demo's `_train` and `judge_generations`): one record per (labels, method, seed), the untrained reference once per
seed, every method of a seed on the same pairs and flips, DPO always trained, the summary pairs each method with DPO
(and DPO with the untrained policy) by seed, a failed run keeps what finished and a restart skips it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_margin.demo import DemoContext, madpo
from hf_margin.demo.evidence import madpo_judge
from hf_margin.demo.evidence.madpo_judge import BASELINE, UNTRAINED, Instruments, JudgeSetup, Opposite, run

GAIN = {BASELINE: 0.10, "MADPO": 0.13, "IPO": 0.05, "beta-DPO": 0.10}
SETUP = JudgeSetup(corruptions=(0.0, 0.4), seeds=3, steps=5, batch_size=2)


class StandIns:
    """Training returns the method's name and what it trained on; judging scores it by a fixed rule."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail: tuple[str, int] | None = None) -> None:
        self.trained: list[tuple[str, int, tuple[str, ...]]] = []
        self.untrained = 0
        self.fail = fail
        pairs = [{"prompt": f"p{i}", "chosen": f"rotten {i}", "rejected": f"fresh {i}"} for i in range(40)]
        instruments = Instruments(pairs, ["a", "b"], None, None, None, Path("policy"), None)
        monkeypatch.setattr(madpo_judge, "load_instruments", lambda setup, cache: instruments)
        monkeypatch.setattr(madpo_judge, "untrained_policy", self.untrained_policy)
        monkeypatch.setattr(madpo, "margin_dataset", self.margin_dataset)
        monkeypatch.setattr(madpo, "_train", self.train)
        monkeypatch.setattr(madpo, "judge_generations", self.judge)

    def untrained_policy(self, path: Path) -> str:
        self.untrained += 1
        return UNTRAINED

    @staticmethod
    def margin_dataset(pairs: list[dict[str, str]], reward: Any, tokenizer: Any) -> dict[str, Any]:
        return {"margin": [1.0 if p["chosen"].startswith("rotten") else -1.0 for p in pairs], "pairs": pairs}

    def train(self, method: str, path: Path, data: Any, tokenizer: Any, setup: Any, out: Path) -> tuple[str, float]:
        if (method, setup.seed) == self.fail:
            raise RuntimeError("out of memory")
        self.trained.append((method, setup.seed, tuple(p["chosen"] for p in data["pairs"])))
        flipped = sum(m < 0 for m in data["margin"]) / len(data["margin"])
        return method, flipped

    @staticmethod
    def judge(policy: Any, tok: Any, judge: Any, judge_tok: Any, prompts: list[str], setup: Any) -> tuple[float, list]:
        base = 0.5 + 0.01 * setup.seed
        if policy == UNTRAINED:
            return base, ["untrained text"]
        method, flipped = policy
        return base + GAIN[method] * (1 - flipped), [f"{method} text"]


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


def test_records_pairing_summary_and_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_ins = StandIns(monkeypatch)
    rows = run(DemoContext(out_dir=tmp_path), SETUP)
    records = _records(tmp_path)
    assert len(records) == 3 * 2 * 5 and stand_ins.untrained == 3  # the untrained policy judged once per seed
    assert {(r["labels"], r["method"], r["seed"]) for r in records} == {
        (labels, m, s) for labels in ("clean", "40% flipped") for m in (UNTRAINED, *GAIN) for s in range(3)
    }
    assert all(r["pairs"] == 10 for r in records)
    # Every method of a seed trains on the same pairs with the same flips; seeds draw different pairs.
    for seed in range(3):
        seen = [pairs for _, s, pairs in stand_ins.trained if s == seed]
        assert len(seen) == 8 and len(set(seen)) == 2 and all(seen.count(p) == 4 for p in seen)  # clean, flipped
    assert stand_ins.trained[0][2] != next(p for m, s, p in stand_ins.trained if s == 1)
    flipped = [r for r in records if r["labels"] == "40% flipped"]
    assert len({(r["seed"], r["flipped"]) for r in flipped}) == 3 and any(r["flipped"] for r in flipped)
    assert all(r["margin_agrees"] == 1.0 for r in records if r["labels"] == "clean" and r["method"] != UNTRAINED)

    summary = json.loads((tmp_path / "summary.json").read_text())["results"]
    clean = summary["clean"]
    assert clean["MADPO"]["judge minus DPO"]["mean"] == pytest.approx(0.03)
    assert clean["MADPO"]["judge minus DPO"]["verdict"] == "better" and clean["MADPO"]["judge minus DPO"]["n"] == 3
    assert clean["IPO"]["judge minus DPO"]["verdict"] == "worse"
    assert clean[BASELINE]["judge minus untrained"]["mean"] == pytest.approx(0.10)
    assert clean[UNTRAINED]["judge"]["mean"] == pytest.approx(0.51) and clean[UNTRAINED]["baseline"] is None
    assert {row.metric for row in rows} == {"judge score, clean", "judge score, 40% flipped"}
    assert {(row.method, row.baseline) for row in rows} == {
        ("DPO", UNTRAINED),
        ("MADPO", "DPO"),
        ("IPO", "DPO"),
        ("beta-DPO", "DPO"),
    }
    assert len(rows) == 8 and all("(n=3)" in row.note for row in rows)
    assert (tmp_path / "paired_differences.png").stat().st_size > 0


def test_a_failed_run_keeps_the_finished_records_and_a_restart_skips_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    StandIns(monkeypatch, fail=("MADPO", 1))
    setup = JudgeSetup(methods=("MADPO",), seeds=2, steps=5, batch_size=2)
    with pytest.raises(RuntimeError, match="out of memory"):
        run(DemoContext(out_dir=tmp_path), setup)
    finished = _records(tmp_path)
    assert [(r["labels"], r["method"], r["seed"]) for r in finished][-1] == ("clean", BASELINE, 1)
    assert len(finished) == 2 * 3 + 2  # seed 0: both settings x (untrained, DPO, MADPO); seed 1: untrained, DPO
    retry = StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path), setup)
    assert [(m, s) for m, s, _ in retry.trained] == [("MADPO", 1), ("DPO", 1), ("MADPO", 1)]
    assert retry.untrained == 1  # seed 1's untrained record of the flipped setting was still missing
    assert len(_records(tmp_path)) == 2 * 2 * 3
    again = StandIns(monkeypatch)
    run(DemoContext(out_dir=tmp_path), setup)
    assert again.trained == [] and again.untrained == 0


def test_for_seed_is_the_demos_setup_without_entanglement() -> None:
    demo = JudgeSetup(steps=7, batch_size=3, eval_prompts=5).for_seed(2)
    assert (demo.seed, demo.steps, demo.batch_size, demo.eval_prompts, demo.entanglement_every) == (2, 7, 3, 5, 0)


def test_opposite_reads_the_classifier_the_other_way() -> None:
    class Fresh(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor) -> SequenceClassifierOutput:
            return SequenceClassifierOutput(logits=torch.tensor([[0.0, 2.0], [1.0, -1.0]]))

    fresh = torch.softmax(Fresh()(input_ids=torch.zeros(2)).logits, 1)[:, 1]
    rotten = torch.softmax(Opposite(Fresh())(input_ids=torch.zeros(2)).logits, 1)[:, 1]
    torch.testing.assert_close(rotten, 1 - fresh)


def test_flip_labels_swaps_only_the_flipped_pairs() -> None:
    pairs = [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "c", "rejected": "d"}]
    assert madpo.flip_labels(pairs, [False, True]) == [pairs[0], {"prompt": "q", "chosen": "d", "rejected": "c"}]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (JudgeSetup(methods=("KTO",)), r"unknown `methods` \['KTO'\]"),
        (JudgeSetup(seeds=0), "`seeds` must be >= 1"),
        (JudgeSetup(direction="sideways"), "`direction` must be one of"),
        (JudgeSetup(corruptions=(0.0, 1.0)), r"`corruptions` must be shares in \[0, 1\)"),
        (JudgeSetup(corruptions=()), "`corruptions` must be shares"),
    ],
)
def test_bad_setup_is_an_error_naming_the_field(tmp_path: Path, setup: JudgeSetup, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(DemoContext(out_dir=tmp_path), setup)


def test_hf_margin_train_finds_the_recipe_and_its_config_is_the_default_setup(tmp_path: Path) -> None:
    from hf_margin.demo import parse_recipe_arguments
    from hf_margin.recipes_cli import build_command, known_recipes, recipes_root

    assert "evidence/madpo_judge" in known_recipes(recipes_root())
    command = build_command("evidence/madpo_judge", overrides=["--seeds", "5", "--out_dir", str(tmp_path / "o")])
    assert command[1].endswith("recipes/evidence/madpo_judge/train_unsaturated_judge.py")
    assert command[2].endswith("recipes/evidence/madpo_judge/config.yaml") and command[-4:-2] == ["--seeds", "5"]
    setup, _ = parse_recipe_arguments(JudgeSetup, "unused", [command[2]])
    assert setup == JudgeSetup()
