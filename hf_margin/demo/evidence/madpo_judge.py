"""Evidence 2: MADPO where the judge is not saturated, against DPO, IPO and beta-DPO, clean and flipped labels.

Setting. The MADPO demo (`hf_margin.demo.madpo`) asks SmolLM2-135M-Instruct for *positive* reviews, which the
untrained policy already writes: its judge score starts at 0.87-0.88 and no method can move it much. Here the task
is turned round (``direction="negative"``): the prompt asks for a negative one-sentence review, the chosen response
is a rotten snippet and the rejected one a fresh snippet of the same movie, and the score is the judge's P(rotten)
(the same fresh/rotten judge read the other way: 1 - P(fresh)), where the untrained policy starts near the middle
of the range (recipes/evidence/README.md, section 2, has the pilot's figures). MADPO (Margin-Adaptive DPO,
arXiv:2510.05342) weights each pair by the reward model's margin; its claim is that this beats DPO (Rafailov et al.,
arXiv:2305.18290), IPO (Azar et al., arXiv:2310.12036) and beta-DPO (Wu et al., arXiv:2407.08639), above all when
the labels are noisy. Each method trains the same LoRA on the same pairs for the same steps (`madpo._train`), and
the judge scores sampled generations for held-out movies (`madpo.judge_generations`).

Per seed, the pairs drawn, the flipped labels (the 40% flipped set is drawn once per seed), the LoRA's
initialisation, the data order and the sampling are drawn from the seed and shared by every method. The reward model
and the judge are fitted once (`classifier_seed`) and the held-out prompts are the same for every seed: they are the
measuring instrument. The untrained policy is scored per seed (its sampling) as the reference DPO must move. Each
finished (labels, method, seed) run is appended at once to ``records.jsonl``; ``summary.json`` (means, 95% intervals,
paired differences: every method to DPO, DPO to the untrained policy) is rewritten after each.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo.evidence.records import (
    append_record,
    check_methods_and_seeds,
    paired_row,
    plot_paired_differences,
    read_records,
    save_summary,
    summarise,
)

BASELINE = "DPO"
UNTRAINED = "untrained"
METHODS = (BASELINE, "MADPO", "IPO", "beta-DPO")
DIRECTIONS = ("negative", "positive")
NEGATIVE_PROMPT = "Write a negative one-sentence review of the movie {movie}."
ENTRY = "evidence/madpo_judge"


@dataclass(frozen=True)
class JudgeSetup:
    """Budget and protocol of evidence experiment 2 (fields as `hf_margin.demo.madpo.MADPOSetup` where shared).

    Args:
        methods: which of `METHODS` to train (DPO, the baseline, is always trained).
        corruptions: shares of pairs with chosen and rejected swapped (0 is the clean data).
        seeds: seeds (each: the pairs, the flips, the LoRA's initialisation, the data order and the sampling).
        direction: "negative" (ask for a negative review, prefer the rotten snippet, score P(rotten)) or
            "positive" (the MADPO demo's task, where the untrained policy already scores 0.87).
        steps: optimizer steps per run; each run sees ``steps * batch_size`` distinct pairs once.
        batch_size: pairs per step.
        max_length: token budget of prompt + completion.
        learning_rate: AdamW learning rate of the LoRA.
        beta: DPO's beta (beta0 of beta-DPO; IPO's tau).
        lora_r: LoRA rank (q_proj, v_proj).
        eval_prompts: held-out movies to generate for (the demo's eval split has 21).
        samples_per_prompt: sampled generations per held-out prompt.
        max_new_tokens: generation length.
        classifier_texts: snippets used to fit the reward model and, separately, the judge.
        classifier_seed: seed of the reward model's and the judge's fit (the same for every seed).
    """

    methods: tuple[str, ...] = METHODS
    corruptions: tuple[float, ...] = (0.0, 0.4)
    seeds: int = 3
    direction: str = "negative"
    steps: int = 40
    batch_size: int = 4
    max_length: int = 96
    learning_rate: float = 1e-3
    beta: float = 0.1
    lora_r: int = 8
    eval_prompts: int = 21
    samples_per_prompt: int = 8
    max_new_tokens: int = 32
    classifier_texts: int = 1000
    classifier_seed: int = 0

    def for_seed(self, seed: int) -> Any:
        """The MADPO demo's setup of one seed (no gradient-entanglement measurements)."""
        from hf_margin.demo.madpo import MADPOSetup

        fields = asdict(self)
        for name in ("methods", "corruptions", "seeds", "direction", "classifier_seed"):
            del fields[name]
        return MADPOSetup(seed=seed, entanglement_every=0, **fields)


class Opposite(torch.nn.Module):
    """A two-class classifier read the other way round: class 1 becomes class 0 (P(rotten) = 1 - P(fresh)).

    Args:
        classifier: a module returning an output with two-class `logits`.
    """

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, **inputs: Any) -> SequenceClassifierOutput:
        return SequenceClassifierOutput(logits=self.classifier(**inputs).logits.flip(-1))


@dataclass
class Instruments:
    """What every run of the experiment shares: the pool of preference pairs (in the setup's direction), the
    held-out prompts, the reward model and judge (class 1 = the preferred label) with their tokenizer, and the
    policy's folder and tokenizer."""

    pairs: list[dict[str, str]]
    prompts: list[str]
    reward: Any
    judge: Any
    classifier_tokenizer: Any
    policy_path: Path
    tokenizer: Any = field(repr=False)


def load_instruments(setup: JudgeSetup, cache: Path) -> Instruments:
    """The MADPO demo's data splits, classifiers and policy, turned round for ``direction="negative"``."""
    from transformers import AutoTokenizer

    from hf_margin.demo.data.pretrained import minilm_path, smollm2_path
    from hf_margin.demo.data.rotten_tomatoes import PROMPT, load_snippets, movie_split, movie_title, preference_pairs
    from hf_margin.demo.madpo import SHARES, _classifier

    snippets = load_snippets()
    snippets["split"] = [movie_split(m, SHARES) for m in snippets["movie"]]
    classifier_tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    reward, judge = (
        _classifier(
            snippets[snippets.split == name],
            classifier_tokenizer,
            setup.classifier_texts,
            setup.classifier_seed,
            cache,
            name,
        )
        for name in ("reward", "judge")
    )
    pairs = preference_pairs(snippets[snippets.split == "pairs"])
    prompt = PROMPT
    if setup.direction == "negative":
        prompt, reward, judge = NEGATIVE_PROMPT, Opposite(reward), Opposite(judge)
        pairs = [
            {"prompt": prompt.format(movie=movie_title(p["movie"])), "chosen": p["rejected"], "rejected": p["chosen"]}
            for p in pairs
        ]
    movies = np.random.default_rng(setup.classifier_seed).permutation(
        sorted(set(snippets.loc[snippets.split == "eval", "movie"]))
    )
    prompts = [prompt.format(movie=movie_title(str(m))) for m in movies[: setup.eval_prompts]]
    policy_path = smollm2_path(cache)
    return Instruments(
        pairs, prompts, reward, judge, classifier_tokenizer, policy_path, AutoTokenizer.from_pretrained(policy_path)
    )


def untrained_policy(path: Path) -> Any:
    """The policy before any training (SmolLM2-135M-Instruct)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


def labels_name(corruption: float) -> str:
    """The record's label setting: "clean" or e.g. "40% flipped"."""
    return "clean" if corruption == 0 else f"{corruption:.0%} flipped"


def _check(setup: JudgeSetup) -> None:
    check_methods_and_seeds(setup.methods, METHODS, setup.seeds)
    if setup.direction not in DIRECTIONS:
        raise ValueError(f"`direction` must be one of {DIRECTIONS}, got {setup.direction!r}")
    bad = [c for c in setup.corruptions if not 0.0 <= c < 1.0]
    if bad or not setup.corruptions:
        raise ValueError(f"`corruptions` must be shares in [0, 1), at least one, got {list(setup.corruptions)}")


def run(context: DemoContext, setup: JudgeSetup | None = None) -> list[DemoRow]:
    """Run every missing (labels, method, seed) record, appending each to records.jsonl; return the table rows."""
    from hf_margin.demo import madpo
    from hf_margin.demo.petal import cache_dir

    setup = setup or JudgeSetup()
    _check(setup)
    methods = [UNTRAINED] + [m for m in METHODS if m in setup.methods or m == BASELINE]
    records_path = context.out_dir / "records.jsonl"
    done = {(r["labels"], r["method"], r["seed"]) for r in read_records(records_path)}
    keys = [(c, m, s) for s in range(setup.seeds) for c in setup.corruptions for m in methods]
    todo = [k for k in keys if (labels_name(k[0]), k[1], k[2]) not in done]
    bar = context.progress(total=len(keys), desc="evidence: MADPO, unsaturated judge", unit="run")
    bar.update(len(keys) - len(todo))
    instruments = load_instruments(setup, cache_dir()) if todo else None
    for seed in sorted({s for _, _, s in todo}):
        assert instruments is not None
        run_setup = setup.for_seed(seed)
        rng = np.random.default_rng(seed)
        pool = instruments.pairs
        pairs = [pool[i] for i in rng.permutation(len(pool))[: setup.steps * setup.batch_size]]
        draws = rng.random(len(pairs))  # one draw per seed: the 40% flipped pairs include the 20% flipped ones
        untrained: tuple[float, list[str], float] | None = None
        for corruption in setup.corruptions:
            labels = labels_name(corruption)
            todo_here = [m for c, m, s in todo if (c, s) == (corruption, seed)]
            if not todo_here:
                continue
            flip = draws < corruption
            data = None
            for method in todo_here:
                start = time.perf_counter()
                if method == UNTRAINED:
                    if untrained is None:
                        policy = untrained_policy(instruments.policy_path)
                        score, texts = _judge(madpo, policy, instruments, run_setup)
                        untrained = score, texts, time.perf_counter() - start
                    score, texts, seconds = untrained
                else:
                    if data is None:
                        data = madpo.margin_dataset(
                            madpo.flip_labels(pairs, flip), instruments.reward, instruments.classifier_tokenizer
                        )
                    policy = madpo._train(
                        method,
                        instruments.policy_path,
                        data,
                        instruments.tokenizer,
                        run_setup,
                        context.out_dir / "runs",
                    )
                    score, texts = _judge(madpo, policy, instruments, run_setup)
                    seconds = time.perf_counter() - start
                record = {"labels": labels, "corruption": corruption, "method": method, "seed": seed, "judge": score}
                record |= {"seconds": seconds, "pairs": len(pairs), "flipped": int(flip.sum()), "samples": texts[:3]}
                if data is not None:
                    record["margin_agrees"] = float(np.mean(np.asarray(data["margin"]) > 0))
                append_record(records_path, record)
                _write_summary(context, setup)
                bar.update()
    bar.close()
    summary = _write_summary(context, setup)
    plot_paired_differences(
        summary["results"],
        ("judge",),
        context.out_dir / "paired_differences.png",
        xlabel="labels",
        title=f"MADPO judge evidence ({setup.seeds} seeds, 95% CI)",
    )
    return rows_from_records(read_records(records_path))


def _judge(madpo: Any, policy: Any, instruments: Instruments, run_setup: Any) -> tuple[float, list[str]]:
    score, texts = madpo.judge_generations(
        policy,
        instruments.tokenizer,
        instruments.judge,
        instruments.classifier_tokenizer,
        instruments.prompts,
        run_setup,
    )
    return float(score), list(texts)


def baseline_of(method: str) -> str | None:
    """Each method's paired baseline: DPO for MADPO, IPO and beta-DPO; the untrained policy for DPO."""
    return {UNTRAINED: None, BASELINE: UNTRAINED}.get(method, BASELINE)


def _write_summary(context: DemoContext, setup: JudgeSetup) -> dict[str, Any]:
    records = read_records(context.out_dir / "records.jsonl")
    results = summarise(
        records,
        setting="labels",
        method="method",
        metrics=("judge",),
        baseline_of=baseline_of,
        order=(UNTRAINED, *METHODS),
    )
    summary = {"setup": asdict(setup), "results": results}
    save_summary(context.out_dir, summary)
    return summary


def rows_from_records(records: list[dict[str, Any]]) -> list[DemoRow]:
    """Per label setting, one row per trained method against its baseline (DPO against the untrained policy):
    means over the seeds both have; the note gives the paired difference with its 95% interval and the seed count."""
    by_key = {(r["labels"], r["method"], r["seed"]): r for r in records}
    rows = []
    for labels in sorted({k[0] for k in by_key}):
        for method in METHODS:
            baseline = baseline_of(method)
            row = paired_row(
                by_key,
                (labels, method),
                (labels, baseline),
                "judge",
                entry=ENTRY,
                names=(method, str(baseline), f"judge score, {labels}"),
                dataset="Rotten Tomatoes + SmolLM2-135M, unsaturated judge",
            )
            rows += [row] if row else []
    return rows
