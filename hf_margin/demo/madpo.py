"""Demo entry: MADPO against DPO (and, in the recipe, IPO and beta-DPO) on a real LM and real text.

The two-step pipeline on SmolLM2-135M-Instruct with LoRA:

1. Rotten Tomatoes snippets are split by movie. A reward model (frozen all-MiniLM-L6-v2 + logistic regression,
   fresh vs rotten) is fitted on one split and a judge, the ground truth, on a disjoint one.
2. Preference pairs come from a third split: prompt "Write a positive one-sentence review of the movie X.",
   chosen = a fresh snippet, rejected = a rotten one of the same movie. Low data quality: a share of pairs has
   chosen and rejected swapped (the paper corrupts a share of pairs; it replaces responses, here labels flip).
   The reward model scores every pair (`score_preference_margins`): that is MADPO's margin.
3. Each method fine-tunes the same LoRA on the same pairs for the same number of steps; the judge's mean
   P(fresh) of sampled generations for held-out movies is the score (higher is better).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._processes import is_main_process

SHARES = {"reward": 0.35, "judge": 0.35, "pairs": 0.25, "eval": 0.05}
BASELINES = ("DPO", "IPO", "beta-DPO")


@dataclass(frozen=True)
class MADPOSetup:
    """Budget of the comparison (defaults: the demo's short run; the recipe passes more).

    Args:
        methods: which of MADPO, DPO, IPO, beta-DPO to train.
        corruptions: shares of pairs with chosen and rejected swapped (0 is the clean data).
        steps: optimizer steps per method.
        batch_size: pairs per step.
        max_length: token budget of prompt + completion.
        learning_rate: AdamW learning rate of the LoRA.
        beta: DPO's beta (beta0 of beta-DPO; IPO's tau).
        lora_r: LoRA rank (q_proj, v_proj).
        eval_prompts: held-out movies to generate for.
        samples_per_prompt: sampled generations per held-out prompt.
        max_new_tokens: generation length.
        classifier_texts: snippets used to fit the reward model and, separately, the judge.
        seed: seed of the data draw, the LoRA and the sampling.
        entanglement_every: measure gradient entanglement every this many steps (0: never).
        entanglement_pairs: training pairs measured one by one at each measurement.
    """

    methods: tuple[str, ...] = ("DPO", "MADPO")
    corruptions: tuple[float, ...] = (0.0,)
    steps: int = 4
    batch_size: int = 4
    max_length: int = 96
    learning_rate: float = 2e-4
    beta: float = 0.1
    lora_r: int = 8
    eval_prompts: int = 4
    samples_per_prompt: int = 1
    max_new_tokens: int = 32
    classifier_texts: int = 1000
    seed: int = 0
    entanglement_every: int = 4
    entanglement_pairs: int = 2


def _classifier(split: Any, tokenizer: Any, texts: int, seed: int, cache: Path, name: str) -> Any:
    from transformers import AutoModel

    from hf_margin.demo.data.pretrained import minilm_path
    from hf_margin.models.embedding_classifier import SentenceEmbeddingClassifier

    model = SentenceEmbeddingClassifier(AutoModel.from_pretrained(minilm_path()))
    head = cache / f"rt_{name}_head_{texts}_{seed}.pt"
    if head.is_file():
        model.head.load_state_dict(torch.load(head, weights_only=True))
        return model
    sample = split.sample(n=min(texts, len(split)), random_state=seed)
    model.fit(tokenizer, sample["text"].tolist(), sample["label"].tolist())
    head.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.head.state_dict(), head)
    return model


def _conversational(pairs: list[dict[str, str]]) -> dict[str, list[Any]]:
    return {
        "prompt": [[{"role": "user", "content": p["prompt"]}] for p in pairs],
        "chosen": [[{"role": "assistant", "content": p["chosen"]}] for p in pairs],
        "rejected": [[{"role": "assistant", "content": p["rejected"]}] for p in pairs],
    }


def flip_labels(pairs: list[dict[str, str]], flip: Any) -> list[dict[str, str]]:
    """`pairs` with chosen and rejected swapped where `flip` (one bool per pair) is true: the corrupted labels."""
    return [
        p | {"chosen": p["rejected"], "rejected": p["chosen"]} if f else p for p, f in zip(pairs, flip, strict=True)
    ]


def margin_dataset(pairs: list[dict[str, str]], reward: Any, reward_tokenizer: Any) -> Any:
    """The conversational preference `datasets.Dataset` of `pairs` with the reward model's margin column."""
    from datasets import Dataset

    from hf_margin.data.preference_scoring import score_preference_margins

    # The reward model reads plain text: prompt, a space, the response.
    plain = Dataset.from_dict(
        {"prompt": [p["prompt"] + " " for p in pairs]} | {k: [p[k] for p in pairs] for k in ("chosen", "rejected")}
    )
    margins = score_preference_margins(plain, reward, reward_tokenizer, progress=False)["margin"]
    return Dataset.from_dict(_conversational(pairs) | {"margin": margins})


def _train(method: str, policy_path: Path, data: Any, tokenizer: Any, setup: MADPOSetup, out: Path) -> Any:
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from hf_margin.trainers import BetaDPOConfig, BetaDPOTrainer, MADPOConfig, MADPOTrainer

    torch.manual_seed(setup.seed)
    model = AutoModelForCausalLM.from_pretrained(policy_path, dtype=torch.float32)
    common = {
        "per_device_train_batch_size": setup.batch_size,
        "max_steps": setup.steps,
        "learning_rate": setup.learning_rate,
        "beta": setup.beta,
        "max_length": setup.max_length,
        "bf16": False,
        "use_cpu": True,
        "report_to": [],
        "gradient_checkpointing": False,
        "save_strategy": "no",
        "logging_steps": max(1, setup.steps // 4),
        "seed": setup.seed,
        "lr_scheduler_type": "constant",
        "disable_tqdm": True,
        # The reference (the adapter disabled) is scored once before training instead of at every step.
        "precompute_ref_log_probs": True,
    }
    trainers: dict[str, tuple[Any, Any, dict[str, Any]]] = {
        "MADPO": (MADPOTrainer, MADPOConfig, {}),
        "DPO": (DPOTrainer, DPOConfig, {}),
        "IPO": (DPOTrainer, DPOConfig, {"loss_type": "ipo"}),
        "beta-DPO": (BetaDPOTrainer, BetaDPOConfig, {}),
    }
    trainer_cls, config_cls, extra = trainers[method]
    columns = data if method == "MADPO" else data.remove_columns("margin")
    lora = LoraConfig(r=setup.lora_r, lora_alpha=2 * setup.lora_r, target_modules=["q_proj", "v_proj"])
    trainer = trainer_cls(
        model,
        args=config_cls(str(out / method), **(common | extra)),
        train_dataset=columns,
        processing_class=tokenizer,
        peft_config=lora,
    )
    if setup.entanglement_every:
        from hf_margin.callbacks import GradientEntanglementCallback
        from hf_margin.diagnostics.gradient_entanglement import RECORDS_FILE

        (out / method / RECORDS_FILE).unlink(missing_ok=True)
        probe = trainer.data_collator([trainer.train_dataset[i] for i in range(setup.entanglement_pairs)])
        trainer.add_callback(GradientEntanglementCallback(trainer, setup.entanglement_every, eval_batch=probe))
    trainer.train()
    return trainer.model


@torch.no_grad()
def judge_generations(
    policy: Any, tokenizer: Any, judge: Any, judge_tokenizer: Any, prompts: list[str], setup: MADPOSetup
) -> tuple[float, list[str]]:
    """Mean judge P(fresh) over sampled generations for `prompts`, and the generations."""
    tokenizer.padding_side = "left"
    messages = [[{"role": "user", "content": p}] for p in prompts for _ in range(setup.samples_per_prompt)]
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", padding=True, return_dict=True
    )
    torch.manual_seed(setup.seed)
    policy.eval()
    output = policy.generate(
        **encoded,
        max_new_tokens=setup.max_new_tokens,
        do_sample=True,
        temperature=0.7,
        top_p=0.95,
        pad_token_id=tokenizer.pad_token_id,
    )
    texts = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    scored = judge_tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=128)
    return float(torch.softmax(judge(**scored).logits, dim=1)[:, 1].mean()), texts


def entanglement_summary(run: Path, picture: Path) -> dict[str, float]:
    """Shares of the measured pairs in each case, their mean cosine, and the run's plot."""
    from hf_margin.diagnostics.gradient_entanglement import CASES
    from hf_margin.diagnostics.plots import load_records, plot_entanglement

    pairs = [r for r in load_records(run) if r["kind"] == "pair"]
    plot_entanglement(run, picture)
    return {case: sum(r["case"] == case for r in pairs) / len(pairs) for case in CASES} | {
        "cosine": sum(r["cosine"] for r in pairs) / len(pairs),
        "measurements": len(pairs),
    }


def compare(setup: MADPOSetup, cache: Path, out: Path, progress: Any = None) -> dict[str, Any]:
    """The whole pipeline; returns {corruption: {method: judge score}} with the untrained policy's score."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hf_margin.demo.data.pretrained import minilm_path, smollm2_path
    from hf_margin.demo.data.rotten_tomatoes import PROMPT, load_snippets, movie_split, movie_title, preference_pairs

    snippets = load_snippets()
    snippets["split"] = [movie_split(m, SHARES) for m in snippets["movie"]]
    minilm_tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    reward = _classifier(
        snippets[snippets.split == "reward"], minilm_tokenizer, setup.classifier_texts, setup.seed, cache, "reward"
    )
    judge = _classifier(
        snippets[snippets.split == "judge"], minilm_tokenizer, setup.classifier_texts, setup.seed, cache, "judge"
    )
    rng = np.random.default_rng(setup.seed)
    pairs = preference_pairs(snippets[snippets.split == "pairs"])
    pairs = [pairs[i] for i in rng.permutation(len(pairs))[: setup.steps * setup.batch_size]]
    eval_movies = sorted(set(snippets.loc[snippets.split == "eval", "movie"]))
    prompts = [PROMPT.format(movie=movie_title(m)) for m in rng.permutation(eval_movies)[: setup.eval_prompts]]

    policy_path = smollm2_path(cache)
    tokenizer = AutoTokenizer.from_pretrained(policy_path)
    base_score, base_texts = judge_generations(
        AutoModelForCausalLM.from_pretrained(policy_path), tokenizer, judge, minilm_tokenizer, prompts, setup
    )
    results: dict[str, Any] = {"untrained": base_score, "samples": {"untrained": base_texts[:4]}, "runs": {}}
    bar = (
        progress(total=len(setup.corruptions) * len(setup.methods), desc="MADPO demo", unit="run", leave=False)
        if (progress)
        else None
    )
    for corruption in setup.corruptions:
        data = margin_dataset(flip_labels(pairs, rng.random(len(pairs)) < corruption), reward, minilm_tokenizer)
        scores: dict[str, dict[str, Any]] = {}
        for method in setup.methods:
            start = time.perf_counter()
            policy = _train(method, policy_path, data, tokenizer, setup, out)
            score, texts = judge_generations(policy, tokenizer, judge, minilm_tokenizer, prompts, setup)
            scores[method] = {"judge": score, "seconds": time.perf_counter() - start}
            if 0 < setup.entanglement_every <= setup.steps:
                picture = out / f"gradient_entanglement_{method}_{corruption:g}.png"
                scores[method]["entanglement"] = entanglement_summary(out / method, picture)
            results["samples"][f"{method}@{corruption}"] = texts[:4]
            if bar is not None:
                bar.update()
        results["runs"][str(corruption)] = scores
    if bar is not None:
        bar.close()
    return results


def rows_from_results(results: dict[str, Any]) -> list[DemoRow]:
    rows = []
    dataset = "Rotten Tomatoes + SmolLM2-135M"
    for corruption, scores in results["runs"].items():
        if "MADPO" not in scores:
            continue
        ours = scores["MADPO"]
        for baseline in [m for m in scores if m != "MADPO"]:
            flipped = f"{float(corruption):.0%} flipped"
            rows.append(
                DemoRow(
                    "madpo",
                    "MADPO",
                    baseline,
                    f"judge P(fresh), {flipped}",
                    ours["judge"],
                    scores[baseline]["judge"],
                    ours["seconds"],
                    dataset,
                )
            )
            if "entanglement" in ours:
                rows.append(
                    DemoRow(
                        "madpo",
                        "MADPO",
                        baseline,
                        f"ideal-case share, {flipped}",
                        ours["entanglement"]["ideal"],
                        scores[baseline]["entanglement"]["ideal"],
                        ours["seconds"],
                        dataset,
                    )
                )
    return rows


def run(context: DemoContext, setup: MADPOSetup | None = None) -> list[DemoRow]:
    from hf_margin.demo.petal import cache_dir

    setup = setup or MADPOSetup()
    results = compare(setup, cache_dir(), context.out_dir / "madpo_runs", context.progress)
    if not is_main_process():  # launched on several processes (the trainings are shared): the main one writes
        return []
    report = {"setup": asdict(setup), **results}
    (context.out_dir / "madpo.json").write_text(json.dumps(report, indent=2))
    return rows_from_results(results)
