"""Our trainers and models write a filled hf_margin model card (README.md) when they save.

Each card is parsed with `huggingface_hub.ModelCard.load`: metadata (base_model, tags, license), the method's
hyperparameters, an evaluation metric the run produced, the library versions, no ``{{`` left; a second save
replaces the card instead of appending to it, and the saved model still loads. `push_to_hub` needs the network:
it writes its card through `create_model_card`, which is called directly here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset
from huggingface_hub import ModelCard
from transformers import BertConfig, BertForSequenceClassification, BertModel, TrainingArguments

from hf_margin.model_cards import library_versions, save_model_card
from hf_margin.trainers._model_card import evaluation_results, number

VERSIONS = library_versions()


def load_card(folder: Path) -> ModelCard:
    card = ModelCard.load(folder / "README.md")
    assert "{{" not in card.content
    assert card.content.count("## Citation") == 1
    assert f"torch {VERSIONS['torch_version']}" in card.text
    assert f"hf_margin {VERSIONS['hf_margin_version']}" in card.text
    return card


def last_eval(trainer: Any, key: str = "eval_loss") -> str:
    values = [entry[key] for entry in trainer.state.log_history if key in entry]
    assert values, f"the run logged no {key}"
    return f"| {key} | {number(values[-1])} |"


def tiny_bert_config(**kwargs: Any) -> BertConfig:
    return BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **kwargs,
    )


def test_evaluation_results_take_the_last_evaluation_and_leave_timings_out() -> None:
    history = [
        {"eval_loss": 0.9, "eval_runtime": 1.0, "step": 1},
        {"loss": 0.5, "step": 2},
        {"eval_loss": 0.25, "eval_samples_per_second": 3.0, "step": 2},
        {"eval_rerank_mrr@10": 0.5, "step": 2},
    ]
    table = evaluation_results(history)
    assert table.startswith("Last evaluation, at step 2:")
    assert "| eval_loss | 0.25 |" in table and "| eval_rerank_mrr@10 | 0.5 |" in table
    assert "0.9" not in table and "runtime" not in table and "samples_per_second" not in table
    assert evaluation_results([{"loss": 0.5, "step": 1}]) == "Not evaluated."


# ---------------------------------------------------------------- MADPO (TRL: checkpoints call create_model_card)


def test_madpo_trainer_writes_its_card_on_checkpoints_save_and_create_model_card(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from transformers import AutoModelForCausalLM

    from hf_margin.trainers import MADPOConfig, MADPOTrainer
    from tests.trainers.tiny_lm import preference_rows, tiny_llama, tiny_tokenizer

    model = tiny_llama(0)
    model.config._name_or_path = "acme/tiny-llama"
    args = MADPOConfig(
        str(tmp_path / "policy"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        max_steps=1,
        c_max=1.5,
        c_min=0.25,
        beta=0.2,
        bf16=False,
        use_cpu=True,
        report_to=[],
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,
        learning_rate=0.1,
        seed=0,
    )
    data = Dataset.from_dict(preference_rows())
    trainer = MADPOTrainer(
        model,
        ref_model=tiny_llama(1),
        args=args,
        train_dataset=data,
        eval_dataset=data,
        processing_class=tiny_tokenizer(),
    )
    trainer.train()
    eval_row = last_eval(trainer)
    # TRL's _save_checkpoint called create_model_card (output folder); save_model wrote the checkpoint's card.
    for folder in (tmp_path / "policy", tmp_path / "policy" / "checkpoint-1"):
        card = load_card(folder)
        assert card.data.base_model == "acme/tiny-llama"
        assert {"hf_margin", "madpo", "dpo"} <= set(card.data.tags)
        assert card.data.license == "other"
        assert "beta = 0.2, c_max = 1.5, c_min = 0.25, lambda = 1.0" in card.text
        assert "all weights trained" in card.text
        assert "A data set whose name was not recorded (8 training rows)" in card.text
        assert f"trl {VERSIONS['trl_version']}" in card.text
    assert eval_row in load_card(tmp_path / "policy").text

    trainer.model_card_values["reward_model"] = "`acme/reward`"
    trainer.save_model()
    first = (tmp_path / "policy" / "README.md").read_text()
    trainer.save_model()
    assert (tmp_path / "policy" / "README.md").read_text() == first  # replaced, not appended
    assert "Reward model: `acme/reward`." in first
    AutoModelForCausalLM.from_pretrained(tmp_path / "policy")

    # What push_to_hub calls after saving (with transformers' and TRL's keyword arguments).
    trainer.create_model_card(
        model_name="madpo-tiny",
        dataset_name="acme/prefs",
        tags=["extra"],
        license="mit",
        language="en",
        dataset_tags=["acme/prefs"],
        tasks="text-generation",
        finetuned_from="acme/tiny-llama-sft",
        dataset_args="default",
    )
    card = load_card(tmp_path / "policy")
    assert card.data.license == "mit" and card.data.language == "en" and card.data.datasets == ["acme/prefs"]
    assert card.data.base_model == "acme/tiny-llama-sft" and "extra" in card.data.tags
    assert card.text.startswith("\n# madpo-tiny") and "`acme/prefs` (8 training rows)" in card.text


# ---------------------------------------------------------------- Margin-MSE (plain Trainer)


def test_margin_mse_trainer_writes_its_card(tmp_path: Path) -> None:
    from hf_margin.trainers import MarginMSETrainer, MarginMSETrainingArguments
    from tests.trainers.test_margin_mse_trainer import cross_encoder, triples
    from tests.trainers.tiny_lm import tiny_tokenizer

    model = cross_encoder()
    model.config._name_or_path = "acme/tiny-bert"
    args = MarginMSETrainingArguments(
        str(tmp_path / "ranker"),
        per_device_train_batch_size=8,
        max_steps=1,
        learning_rate=0.1,
        optim="sgd",
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
        max_length=16,
        eval_strategy="steps",
        eval_steps=1,
    )
    trainer = MarginMSETrainer(
        model, args, train_dataset=triples(), eval_dataset=triples(4, seed=1), processing_class=tiny_tokenizer()
    )
    trainer.train()
    trainer.save_model()
    card = load_card(tmp_path / "ranker")
    assert card.data.base_model == "acme/tiny-bert" and card.data.pipeline_tag == "text-classification"
    assert {"hf_margin", "margin-mse"} <= set(card.data.tags)
    assert "A cross-encoder ranker" in card.text and "(query, positive, 2 negatives)" in card.text
    assert "Scores precomputed in the data's `teacher_scores` column (one score per query-passage pair" in card.text
    assert "| max_length | 16 |" in card.text and "| learning_rate | 0.1 |" in card.text
    assert last_eval(trainer) in card.text
    first = (tmp_path / "ranker" / "README.md").read_text()
    trainer.create_model_card(model_name="ranker", tags="x")
    assert (tmp_path / "ranker" / "README.md").read_text().count("## Teacher") == 1
    BertForSequenceClassification.from_pretrained(tmp_path / "ranker")
    assert first.count("## Teacher") == 1


# ---------------------------------------------------------------- PETAL (peft writes its own README first)


def _classifier() -> BertForSequenceClassification:
    torch.manual_seed(0)
    base = BertForSequenceClassification(tiny_bert_config(num_labels=2))
    base.config._name_or_path = "acme/tiny-bert"
    return base


def _petal_classifier() -> Any:
    pytest.importorskip("peft")
    from peft import get_peft_model

    from hf_margin.tuners.petal import PetalConfig

    base = _classifier()
    config = PetalConfig(
        r=4,
        dropout=0.0,
        target_modules=["query", "value"],
        modules_to_save=["classifier"],
        single_branch_modules=["bert.pooler.dense"],
    )
    return get_peft_model(base, config)


def _quality_rows(n: int = 8) -> Dataset:
    ids = torch.randint(0, 50, (n, 6), generator=torch.Generator().manual_seed(1))
    return Dataset.from_dict(
        {"input_ids": ids.tolist(), "labels": [0, 1] * (n // 2), "petal_quality": [i / n for i in range(n)]}
    )


def test_petal_trainer_replaces_peft_readme_with_its_card_and_the_adapter_still_loads(tmp_path: Path) -> None:
    from peft import PeftModel

    from hf_margin.trainers import PetalTrainer

    model = _petal_classifier()
    args = TrainingArguments(
        str(tmp_path / "petal"),
        max_steps=1,
        per_device_train_batch_size=4,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        eval_strategy="steps",
        eval_steps=1,
    )
    trainer = PetalTrainer(model=model, args=args, train_dataset=_quality_rows(), eval_dataset=_quality_rows(4))
    trainer.train()
    trainer.model_card_values["quality_description"] = "Sharpness, calibrated on the training images."
    trainer.save_model()
    folder = tmp_path / "petal"
    card = load_card(folder)
    assert card.data.library_name == "peft" and card.data.base_model == "acme/tiny-bert"
    assert {"hf_margin", "petal", "base_model:adapter:acme/tiny-bert"} <= set(card.data.tags)
    assert "(`query, value`, rank 4 each)" in card.text and "`bert.pooler.dense` carry a single branch" in card.text
    assert (
        "Sharpness, calibrated on the training images." in card.text and "| quality_key | petal_quality |" in card.text
    )
    assert f"peft {VERSIONS['peft_version']}" in card.text and "PEFT" not in card.text  # peft's own card is gone
    assert last_eval(trainer) in card.text

    loaded = PeftModel.from_pretrained(_classifier(), folder).eval()
    model.eval()
    ids, q = torch.tensor(_quality_rows(2)["input_ids"]), torch.tensor([0.2, 0.9])
    torch.testing.assert_close(
        loaded(input_ids=ids, petal_quality=q).logits, model(input_ids=ids, petal_quality=q).logits
    )


def test_petal_card_for_a_model_saved_outside_the_trainer(tmp_path: Path) -> None:
    from hf_margin.tuners.petal.model_card import petal_card_values

    model = _petal_classifier()
    model.save_pretrained(tmp_path / "adapter")
    assert "PEFT" in (tmp_path / "adapter" / "README.md").read_text()  # peft's card
    save_model_card(tmp_path / "adapter", "petal_adapter", **petal_card_values(model, evaluation_results={"acc": 0.5}))
    card = load_card(tmp_path / "adapter")
    assert card.data.base_model == "acme/tiny-bert" and "| acc | 0.5 |" in card.text and "PEFT" not in card.text
    with pytest.raises(ValueError, match="`model` has no PETAL adapter"):
        petal_card_values(BertModel(tiny_bert_config()))


# ---------------------------------------------------------------- models: save_pretrained writes the card


def test_transicd_save_pretrained_writes_its_card(tmp_path: Path) -> None:
    from hf_margin.models.transicd import TransICDConfig, TransICDModel

    backbone = tiny_bert_config().to_dict() | {"_name_or_path": "acme/tiny-bert"}
    config = TransICDConfig(
        backbone_config=backbone, id2label={0: "A00", 1: "J45", 2: "I10"}, label_counts=[40, 3, 9], ldam_c=2.5
    )
    model = TransICDModel(config)
    model.save_pretrained(tmp_path / "coder", is_main_process=False)
    assert not (tmp_path / "coder" / "README.md").exists()
    model.save_pretrained(tmp_path / "coder")
    first = (tmp_path / "coder" / "README.md").read_text()
    model.save_pretrained(tmp_path / "coder")
    assert (tmp_path / "coder" / "README.md").read_text() == first
    card = load_card(tmp_path / "coder")
    assert card.data.base_model == "acme/tiny-bert" and {"transicd", "ldam"} <= set(card.data.tags)
    assert "3 codes (A00, J45, I10)" in card.text and "LDAM C = 2.5" in card.text
    assert "| label_counts (min / max) | 3 / 40 |" in card.text and "the `acme/tiny-bert` encoder" in card.text
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    reloaded = TransICDModel.from_pretrained(tmp_path / "coder").eval()
    torch.testing.assert_close(reloaded(input_ids=ids).logits, model.eval()(input_ids=ids).logits)


def test_margin_head_save_pretrained_writes_its_card(tmp_path: Path) -> None:
    from hf_margin.models.margin_head import MarginHeadConfig, MarginHeadModel

    config = MarginHeadConfig(
        backbone_config=tiny_bert_config().to_dict(),
        head_type="cosface",
        head_kwargs={"margin": 0.35, "scale": 32.0},
        embedding_size=8,
    )
    config.num_labels = 5
    model = MarginHeadModel(config)
    model.save_pretrained(tmp_path / "faces", is_main_process=False)
    assert not (tmp_path / "faces" / "README.md").exists()
    model.save_pretrained(tmp_path / "faces")
    model.save_pretrained(tmp_path / "faces")
    card = load_card(tmp_path / "faces")
    assert card.data.base_model is None  # built from a config: no Hub model to name in the metadata
    assert {"hf_margin", "cosface"} <= set(card.data.tags)
    assert "a **CosFace** head over 5 classes" in card.text and "arXiv 1801.09414" in card.text
    assert "| margin | 0.35 |" in card.text and "| scale | 32.0 |" in card.text
    assert "a linear projection to 8 dimensions" in card.text and "wang2018cosface" in card.text
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    reloaded = MarginHeadModel.from_pretrained(tmp_path / "faces").eval()
    torch.testing.assert_close(reloaded(input_ids=ids).embeddings, model.eval()(input_ids=ids).embeddings)


def test_model_push_to_hub_uploads_our_card_with_the_hub_tags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`push_to_hub` needs the network: the Hub calls are replaced; what would be uploaded is checked."""
    import transformers.utils.hub as hub
    from huggingface_hub import ModelCardData

    from hf_margin.models.margin_head import MarginHeadConfig, MarginHeadModel

    class Repo:
        repo_id = "someone/faces"

    class Api:
        def create_repo(self, repo_id: str, **kwargs: Any) -> Repo:
            return Repo()

    uploaded: dict[str, str] = {}

    def upload(self: Any, working_dir: str, repo_id: str, *args: Any, **kwargs: Any) -> str:
        uploaded.update({path.name: path.read_text() for path in Path(working_dir).iterdir() if path.suffix == ".md"})
        return repo_id

    hub_card = ModelCard.from_template(ModelCardData(tags=["from-the-hub"]), model_description="generic")
    import transformers.modeling_utils as modeling

    for module in (hub, modeling):
        monkeypatch.setattr(module, "hf_api", Api)
        monkeypatch.setattr(module, "create_and_tag_model_card", lambda *args, **kwargs: hub_card)
    monkeypatch.setattr(hub.PushToHubMixin, "_upload_modified_files", upload)
    config = MarginHeadConfig(backbone_config=tiny_bert_config().to_dict(), head_type="arcface")
    config.num_labels = 3
    MarginHeadModel(config).push_to_hub("someone/faces")
    card = ModelCard(uploaded["README.md"])
    assert {"hf_margin", "arcface", "from-the-hub"} <= set(card.data.tags)
    assert "ArcFace" in card.text and "generic" not in card.text and "{{" not in card.text
    uploaded.clear()  # save_pretrained(push_to_hub=True) uploads through the same method
    MarginHeadModel(config).save_pretrained(tmp_path / "faces", push_to_hub=True, repo_id="someone/faces")
    assert "ArcFace" in ModelCard(uploaded["README.md"]).text


# ---------------------------------------------------------------- sentence-transformers writes its own card


def test_sentence_transformer_card_names_margin_embedding_loss(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    from hf_margin.embeddings.margin_embedding_loss import MarginEmbeddingLoss
    from tests.embeddings.tiny_st import retrieval_rows, tiny_sentence_transformer

    model = tiny_sentence_transformer(tmp_path / "bert")
    loss = MarginEmbeddingLoss(model, focal_gamma=2.0, filter_strategy="relative", filter_margin=0.1)
    args = SentenceTransformerTrainingArguments(
        str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=1, report_to="none", save_strategy="no", seed=0
    )
    data = Dataset.from_dict(retrieval_rows(8, negatives=1))
    SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss).train()
    model.save_pretrained(str(tmp_path / "st"))
    text = (tmp_path / "st" / "README.md").read_text()
    assert (
        "MarginEmbeddingLoss" in text
        and "loss:MarginEmbeddingLoss" in ModelCard.load(tmp_path / "st" / "README.md").data.tags
    )
    assert '"focal_gamma": 2.0' in text and '"filter_strategy": "relative"' in text and '"filter_margin": 0.1' in text
    assert "2506.20923" in text and "2506.07438" in text  # KaLM-Embedding-V2 and LG-ANNA-Embedding


# ---------------------------------------------------------------- a card that cannot be written never fails a save


def test_save_pretrained_and_train_warn_and_go_on_when_the_card_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hf_margin.model_cards import ModelCardWarning
    from hf_margin.models.margin_head import MarginHeadConfig, MarginHeadModel
    from hf_margin.trainers import PetalTrainer

    monkeypatch.setenv("HF_MARGIN_MODEL_CARDS", str(tmp_path / "no-templates"))
    config = MarginHeadConfig(backbone_config=tiny_bert_config().to_dict(), head_type="arcface", embedding_size=8)
    config.num_labels = 3
    model = MarginHeadModel(config)
    with pytest.warns(
        ModelCardWarning, match=r"MarginHeadModel.save_pretrained: model card not written .*no-templates"
    ):
        model.save_pretrained(tmp_path / "faces")
    assert not (tmp_path / "faces" / "README.md").exists()
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    reloaded = MarginHeadModel.from_pretrained(tmp_path / "faces").eval()
    torch.testing.assert_close(reloaded(input_ids=ids).embeddings, model.eval()(input_ids=ids).embeddings)

    args = TrainingArguments(
        str(tmp_path / "petal"), max_steps=1, per_device_train_batch_size=4, report_to=[], use_cpu=True
    )
    trainer = PetalTrainer(model=_petal_classifier(), args=args, train_dataset=_quality_rows())
    with pytest.warns(ModelCardWarning, match="PetalTrainer.save_model: model card not written"):
        trainer.train()  # the end-of-training checkpoint saves the model, then fails to write the card
    checkpoint = tmp_path / "petal" / "checkpoint-1"
    assert (checkpoint / "adapter_model.safetensors").is_file() and (checkpoint / "trainer_state.json").is_file()
    with pytest.warns(ModelCardWarning, match="PetalTrainer.create_model_card: model card not written"):
        trainer.create_model_card(model_name="petal")
