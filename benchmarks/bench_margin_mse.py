"""MarginMSETrainer against sentence-transformers' MarginMSELoss: one training step (loss, backward, AdamW) of the
same all-MiniLM-L6-v2 bi-encoder (mean pooling, cosine: what the model's Normalize module gives sentence-
transformers) on the same 32 ICD-10-CM (term, description, other description) rows with the same teacher
scores. Target: no slower."""

from __future__ import annotations

import random
import sys
import tempfile
from typing import Any

import torch

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

CASE = "MiniLM-L6 bi-encoder, batch 32 x (query, positive, negative), 64 tokens"


def rows() -> dict[str, list[Any]]:
    from hf_margin.demo.data.retrieval import icd10_retrieval

    data = icd10_retrieval()
    rng = random.Random(0)
    pairs = rng.sample(data.train_pairs, 32)
    return {
        "query": [term for term, _ in pairs],
        "positive": [description for _, description in pairs],
        "negative": rng.sample(data.train_corpus, 32),
        "teacher_scores": torch.rand(32, 2, generator=torch.Generator().manual_seed(0)).tolist(),
    }


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss
    from transformers import AutoModel, AutoTokenizer

    from hf_margin.demo.data.pretrained import minilm_path
    from hf_margin.trainers import MarginMSETrainer, MarginMSETrainingArguments

    data = rows()
    student = AutoModel.from_pretrained(minilm_path()).to(device)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    args = MarginMSETrainingArguments(
        tempfile.mkdtemp(),
        student_type="bi-encoder",
        similarity="cosine",
        max_length=64,
        report_to="none",
        use_cpu=device == "cpu",
    )
    trainer = MarginMSETrainer(student, args, train_dataset=Dataset.from_dict(data), processing_class=tokenizer)
    examples = [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
    batch = trainer._prepare_inputs(trainer.data_collator(examples))
    ours_optimizer = torch.optim.AdamW(student.parameters(), lr=1e-5)

    def ours() -> None:
        loss = trainer.compute_loss(student, batch)
        assert isinstance(loss, torch.Tensor)
        loss.backward()
        ours_optimizer.step()
        ours_optimizer.zero_grad(set_to_none=True)

    model = SentenceTransformer(minilm_path(), device=device)
    model.max_seq_length = 64
    loss_fn = MarginMSELoss(model)
    features = [
        {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in model.preprocess(data[c]).items()}
        for c in ("query", "positive", "negative")
    ]
    labels = torch.tensor(data["teacher_scores"], device=device)
    anchor_optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def anchor() -> None:
        loss_fn(features, labels).backward()
        anchor_optimizer.step()
        anchor_optimizer.zero_grad(set_to_none=True)

    return ours, anchor


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    timing = measure_case(__name__, CASE, make_steps, 4 if quick else 10, device)
    return [BenchRow("Margin-MSE training step", CASE, "sentence-transformers MarginMSELoss", *timing)]


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
