"""The five set-ups the launched tests train (tiny models from configs, no downloads), each built for a given
number of processes: every process gets ``BATCH // world`` rows per step, so the global batch is always BATCH.

A case is a function ``(folder, world) -> Trainer``; `trained_weights` runs it and returns every trainable
parameter by name, gathered to full tensors under FSDP2 (a DTensor's ``full_tensor()``, which every rank calls).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

BATCH = 8  # the global batch: 16 rows make 2 steps per epoch
STEPS = 2
SGD = {"optim": "sgd", "learning_rate": 0.1}
COMMON = {
    "max_steps": STEPS,
    "report_to": "none",
    # CPU processes (gloo) unless HF_MARGIN_TEST_DEVICE=cuda (scripts/gpu_check.sh: one GPU per process, NCCL)
    "use_cpu": os.environ.get("HF_MARGIN_TEST_DEVICE", "cpu") == "cpu",
    "seed": 0,
    "lr_scheduler_type": "constant",
    "max_grad_norm": 0.0,  # no clipping: it would hide a wrong gradient scale
    "save_strategy": "steps",
    "save_steps": STEPS,  # one checkpoint, at the end
    "logging_steps": 1,
    "dataloader_num_workers": 0,
}


def _settings(world: int, **extra: Any) -> dict[str, Any]:
    return COMMON | SGD | {"per_device_train_batch_size": BATCH // world} | extra


def madpo(folder: Path, world: int, **options: Any) -> Trainer:
    """MADPOTrainer on a tiny Llama with a LoRA adapter; the reference is the base model (adapter disabled)."""
    from peft import LoraConfig

    from hf_margin.trainers import MADPOConfig, MADPOTrainer
    from tests.trainers.test_madpo_multiprocess import pairs
    from tests.trainers.tiny_lm import tiny_llama, tiny_tokenizer

    settings = _settings(world, learning_rate=0.5) | options
    args = MADPOConfig(str(folder), bf16=False, gradient_checkpointing=False, **settings)
    return MADPOTrainer(
        tiny_llama(0),
        args=args,
        train_dataset=pairs(),
        processing_class=tiny_tokenizer(),
        peft_config=LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )


def madpo_precomputed(folder: Path, world: int) -> Trainer:
    """`madpo` with the reference log-probs precomputed once before training (``precompute_ref_log_probs``), as
    the MADPO recipe does."""
    return madpo(folder, world, precompute_ref_log_probs=True)


def _margin_head_model() -> torch.nn.Module:
    """A MarginHeadModel: a 2-layer BERT backbone (no dropout), mean pooling, an ArcFace head over 4 classes."""
    from hf_margin import MarginHeadConfig, MarginHeadModel
    from tests.models.test_margin_head_model import _bert_config

    torch.manual_seed(0)
    config = MarginHeadConfig(backbone_config=_bert_config(), head_type="arcface")
    config.num_labels = 4
    return MarginHeadModel(config)


def petal(folder: Path, world: int) -> Trainer:
    """PetalTrainer: PETAL on a MarginHeadModel's BERT backbone (query, value), the ArcFace head trained in full,
    a per-sample ``petal_quality`` column."""
    from hf_margin.trainers.petal_trainer import PetalTrainer
    from tests.models.test_margin_head_model import VOCAB
    from tests.tuners.test_petal import _petal

    model = _petal(_margin_head_model(), target_modules=["query", "value"], modules_to_save=["head"])
    rows = {
        "input_ids": torch.randint(1, VOCAB, (16, 6), generator=torch.Generator().manual_seed(1)).tolist(),
        "labels": [0, 1, 2, 3] * 4,
        "petal_quality": torch.linspace(0, 1, 16).tolist(),
    }
    args = TrainingArguments(str(folder), **_settings(world))
    return PetalTrainer(model=model, args=args, train_dataset=Dataset.from_dict(rows))


def margin_mse(folder: Path, world: int) -> Trainer:
    """MarginMSETrainer on a tiny BERT cross-encoder with precomputed teacher scores."""
    from hf_margin.trainers import MarginMSETrainer, MarginMSETrainingArguments
    from tests.trainers.test_margin_mse_trainer import cross_encoder, triples
    from tests.trainers.tiny_lm import tiny_tokenizer

    args = MarginMSETrainingArguments(str(folder), max_length=16, **_settings(world))
    return MarginMSETrainer(cross_encoder(), args, train_dataset=triples(16), processing_class=tiny_tokenizer())


def embedding(folder: Path, world: int) -> Trainer:
    """SentenceTransformerTrainer with MarginEmbeddingLoss(gather_across_devices=True): every process scores its
    queries against the documents of the whole global batch."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    from hf_margin.embeddings import MarginEmbeddingLoss
    from tests.embeddings.tiny_st import retrieval_rows, tiny_sentence_transformer

    args = SentenceTransformerTrainingArguments(str(folder), **_settings(world))
    with args.main_process_first():  # rank 0 writes the base model (transformers saves on rank 0 only)
        model = tiny_sentence_transformer(folder / "base")
    loss = MarginEmbeddingLoss(model, gather_across_devices=True, focal_gamma=2.0, symmetric=True)
    data = Dataset.from_dict(retrieval_rows(n=16, negatives=1))
    return SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)


def transicd(folder: Path, world: int) -> Trainer:
    """TransICDModel (LDAM loss, DRW callback) under a plain Trainer."""
    from hf_margin.callbacks.drw import DRWCallback
    from tests.models.test_transicd_multiprocess import fresh_model, notes

    model = fresh_model()
    args = TrainingArguments(str(folder), **_settings(world))
    callbacks = [DRWCallback(model.loss_fct, switch_epoch=1, beta=0.999)]
    return Trainer(model, args, train_dataset=notes(), callbacks=callbacks)


def _classification(folder: Path, world: int, loss: torch.nn.Module, classes: int) -> Trainer:
    from hf_margin.trainers import ClassificationLossArguments, ClassificationLossTrainer
    from tests.trainers.test_classification_loss_trainer import Classifier, rows

    data = rows(16, classes=max(classes, 2)).remove_columns("sample_weight")
    args = ClassificationLossArguments(str(folder), **_settings(world))
    return ClassificationLossTrainer(Classifier(classes), args, loss=loss, train_dataset=data)


def auc_margin(folder: Path, world: int) -> Trainer:
    """ClassificationLossTrainer with AUC-M, whose a, b and alpha are trained outside the model. A fixed `imratio`:
    with the batch's own positive ratio (the default) the loss of a process's share of the batch is not the share
    of the whole batch's loss, under DDP as under gradient accumulation."""
    from hf_margin.losses import AUCMarginLoss

    return _classification(folder, world, AUCMarginLoss(margin=1.0, imratio=0.5, score_type="logits"), classes=1)


def aldr_kl(folder: Path, world: int) -> Trainer:
    """ClassificationLossTrainer with ALDR-KL, whose per-example lambdas each process updates for its own rows."""
    from hf_margin.losses import ALDRKLLoss

    return _classification(folder, world, ALDRKLLoss(num_examples=16), classes=3)


CASES: dict[str, Callable[[Path, int], Trainer]] = {
    "madpo": madpo,
    "petal": petal,
    "margin_mse": margin_mse,
    "embedding": embedding,
    "transicd": transicd,
}
# launched on their own (test_launched.py: the precomputed reference of the MADPO recipe; catalogue losses with a
# state of their own under ClassificationLossTrainer, compared with the loss's state too)
EXTRA_CASES: dict[str, Callable[[Path, int], Trainer]] = {
    "madpo_precomputed": madpo_precomputed,
    "auc_margin": auc_margin,
    "aldr_kl": aldr_kl,
}


def loss_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The state of a ClassificationLossTrainer's loss (parameters and buffers) under ``loss.<name>``; empty for
    other trainers."""
    from hf_margin.trainers import ClassificationLossTrainer

    if not isinstance(trainer, ClassificationLossTrainer):  # (a sentence-transformers loss holds the whole model)
        return {}
    return {f"loss.{name}": tensor.detach().cpu().clone() for name, tensor in trainer.loss.state_dict().items()}


def full_parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every trainable parameter as a full tensor (FSDP2's DTensor shards gathered: a collective, so every rank
    must call it), keyed by its name without the wrappers' prefixes."""
    from torch.distributed.tensor import DTensor

    full = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            tensor = parameter.full_tensor() if isinstance(parameter, DTensor) else parameter
            full[name.removeprefix("module.")] = tensor.detach().cpu().clone()
    return full


def trained_weights(
    case: str, folder: Path, world: int, before: dict[str, torch.Tensor] | None = None
) -> tuple[dict[str, torch.Tensor], Trainer]:
    """Train `case` for STEPS steps; its trainable parameters (full tensors, and the loss's state: `loss_state`)
    and the trainer. `before`, if given, receives them before training."""
    trainer = (CASES | EXTRA_CASES)[case](folder, world)
    if before is not None:
        before.update(full_parameters(trainer.model) | loss_state(trainer))
    trainer.train()
    assert trainer.state.global_step == STEPS
    return full_parameters(trainer.model_wrapped) | loss_state(trainer), trainer


def reloaded(case: str, final: Path) -> torch.nn.Module:
    """The model `case` saved in `final`, loaded in this (single) process the way a user loads it."""
    if case == "madpo":
        from peft import PeftModel

        from tests.trainers.tiny_lm import tiny_llama

        return PeftModel.from_pretrained(tiny_llama(0), str(final), is_trainable=True)
    if case == "petal":
        from peft import PeftModel

        return PeftModel.from_pretrained(_margin_head_model(), str(final), is_trainable=True)
    if case == "margin_mse":
        from transformers import BertForSequenceClassification

        return BertForSequenceClassification.from_pretrained(str(final))
    if case == "embedding":
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(final), device="cpu")
    from hf_margin.models.transicd.modeling_transicd import TransICDModel

    return TransICDModel.from_pretrained(str(final))
