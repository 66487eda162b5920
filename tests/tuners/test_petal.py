"""PETAL as a PEFT method: its defining properties, peft integration, save/load, merging and bad input."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import hf_margin  # noqa: F401  (registers PETAL)

peft = pytest.importorskip("peft")
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    SwinConfig,
    SwinModel,
    ViTConfig,
    ViTModel,
)

from hf_margin.tuners.petal import PetalConfig, PetalConv2d, PetalLayer, PetalLinear  # noqa: E402
from tests.checkpointing import enable_activation_checkpointing  # noqa: E402

R = 4


def _bert() -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertModel(config).eval()


def _ids(batch: int = 4) -> torch.Tensor:
    return torch.randint(0, 50, (batch, 6), generator=torch.Generator().manual_seed(1))


class _Tiny(nn.Module):
    """One linear and one convolution, and a forward that records the keyword arguments it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 5)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.LayerNorm(5)
        self.received: dict = {}

    def forward(self, x: torch.Tensor, image: torch.Tensor | None = None, **kwargs: object) -> tuple:
        self.received = kwargs
        return self.linear(x), None if image is None else self.conv(image)


def _petal(model: nn.Module, **kwargs: object) -> PeftModel:
    options = {"r": R, "dropout": 0.0, "init_weights": False} | kwargs
    return get_peft_model(model, PetalConfig(**options))  # type: ignore[arg-type]


def _q(*values: float) -> torch.Tensor:
    return torch.tensor(values)


# ---------------------------------------------------------------- defining properties


def test_zero_b_at_init_leaves_the_base_model_unchanged_for_any_quality() -> None:
    base = _bert()
    expected = base(input_ids=_ids()).last_hidden_state
    model = _petal(copy.deepcopy(base), target_modules=["query", "value"], init_weights=True)
    for quality in (_q(0, 0, 0, 0), _q(0, 0.3, 0.7, 1), _q(1, 1, 1, 1)):
        out = model(input_ids=_ids(), petal_quality=quality).last_hidden_state
        torch.testing.assert_close(out, expected)


def _linear_petal(**kwargs: object) -> tuple[PeftModel, PetalLinear]:
    model = _petal(_Tiny(), target_modules=["linear"], **kwargs)
    layer = model.base_model.model.linear
    assert isinstance(layer, PetalLinear)
    return model, layer


def test_quality_zero_and_one_are_single_lora_branches_as_peft_lora() -> None:
    x = torch.randn(3, 6)
    model, layer = _linear_petal(scale=0.5)
    a, b = layer.petal_A["default"], layer.petal_B["default"]
    for quality, rows in ((0.0, slice(0, R)), (1.0, slice(R, 2 * R))):
        lora = get_peft_model(_Tiny(), LoraConfig(r=R, lora_alpha=0.5 * R, target_modules=["linear"]))
        lora_layer = lora.base_model.model.linear
        with torch.no_grad():
            lora_layer.base_layer.load_state_dict(layer.base_layer.state_dict())
            lora_layer.lora_A["default"].weight.copy_(a[rows])
            lora_layer.lora_B["default"].weight.copy_(b[:, rows])
        torch.testing.assert_close(model(x, petal_quality=quality)[0], lora(x)[0])


def test_output_is_linear_in_quality_for_linear_and_conv() -> None:
    model = _petal(_Tiny(), target_modules=["linear", "conv"])
    x, image = torch.randn(2, 6), torch.randn(2, 3, 5, 5)
    low = model(x, image, petal_quality=0.0)
    high = model(x, image, petal_quality=1.0)
    q = _q(0.25, 0.8)
    mixed = model(x, image, petal_quality=q)
    for out_low, out_high, out in zip(low, high, mixed, strict=True):
        weight = q.view(-1, *[1] * (out.dim() - 1))
        torch.testing.assert_close(out, (1 - weight) * out_low + weight * out_high)


def test_scaling_a_branch_input_equals_scaling_its_output() -> None:
    model, layer = _linear_petal()
    x = torch.randn(4, 6)
    base = layer.base_layer(x)
    a, b = layer.petal_A["default"], layer.petal_B["default"]
    q = _q(0.1, 0.4, 0.6, 0.9).unsqueeze(1)
    expected = base + (b[:, :R] @ a[:R] @ ((1 - q) * x).T).T + (b[:, R:] @ a[R:] @ (q * x).T).T  # official form
    torch.testing.assert_close(model(x, petal_quality=q.squeeze(1))[0], expected)


def test_only_adapter_and_modules_to_save_get_gradients() -> None:
    model = _petal(_Tiny(), target_modules=["linear", "conv"], modules_to_save=["norm"])
    out, image_out = model(torch.randn(2, 6), torch.randn(2, 3, 4, 4), petal_quality=_q(0.2, 0.9))
    (out.sum() + image_out.sum() + model.base_model.model.norm(out).sum()).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert with_grad == trainable
    assert all("petal_" in n or "modules_to_save" in n for n in trainable)
    assert any("petal_A" in n for n in trainable) and any("modules_to_save" in n for n in trainable)


def test_trainable_parameter_count_matches_the_closed_form() -> None:
    model = _petal(
        _bert(), target_modules=["query", "key", "value"], single_branch_modules=["pooler.dense"], init_weights=True
    )
    trainable, _ = model.get_nb_trainable_parameters()
    d = 16
    two_branch = 2 * 3 * (2 * R * (d + d))  # 2 layers x {query, key, value}: 2r (d_in + d_out)
    single = R * (d + d)  # the pooler projection: r (d_in + d_out)
    assert trainable == two_branch + single


def test_single_branch_modules_ignore_the_quality() -> None:
    model = _petal(_Tiny(), target_modules=["conv"], single_branch_modules=["linear"])
    assert model.base_model.model.linear.branches["default"] == 1
    assert model.base_model.model.conv.branches["default"] == 2
    x = torch.randn(2, 6)
    torch.testing.assert_close(model(x, petal_quality=0.0)[0], model(x, petal_quality=1.0)[0])
    layer = model.base_model.model.linear
    assert layer.petal_A["default"].shape == (R, 6)


# ---------------------------------------------------------------- models people adapt


@pytest.mark.parametrize("which", ["vit", "clip", "swin"])
def test_each_sample_uses_its_own_quality_in_vision_transformers(which: str) -> None:
    torch.manual_seed(0)
    if which == "vit":
        config = ViTConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=16,
            patch_size=4,
        )
        base, targets = ViTModel(config), ["q_proj", "v_proj"]
    elif which == "clip":
        config = CLIPVisionConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=16,
            patch_size=4,
        )
        base, targets = CLIPVisionModel(config), ["q_proj", "v_proj"]
    else:  # Swin folds windows into the batch dimension: every window of an image must get that image's q
        config = SwinConfig(image_size=16, patch_size=2, embed_dim=8, depths=[1, 1], num_heads=[2, 2], window_size=2)
        base, targets = SwinModel(config), ["q_proj", "v_proj"]
    model = _petal(base.eval(), target_modules=targets)
    pixels = torch.randn(2, 3, 16, 16)
    together = model(pixel_values=pixels, petal_quality=_q(0.1, 0.9)).last_hidden_state
    first = model(pixel_values=pixels[:1], petal_quality=_q(0.1)).last_hidden_state
    second = model(pixel_values=pixels[1:], petal_quality=_q(0.9)).last_hidden_state
    torch.testing.assert_close(together, torch.cat([first, second]), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(first, model(pixel_values=pixels[:1], petal_quality=_q(0.9)).last_hidden_state)


def test_gradients_equal_with_and_without_activation_checkpointing() -> None:
    grads = []
    for checkpointing in (False, True):
        base = _bert().train()
        if checkpointing:
            enable_activation_checkpointing(base, {"use_reentrant": False})
        model = _petal(base, target_modules=["query", "value"])
        model(input_ids=_ids(), petal_quality=_q(0, 0.3, 0.7, 1)).last_hidden_state.pow(2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def test_bf16_autocast() -> None:
    model = _petal(_bert(), target_modules=["query", "value"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_ids=_ids(), petal_quality=_q(0, 0.3, 0.7, 1)).last_hidden_state
    assert torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if "petal_" in n)


def test_dropout_positions() -> None:
    for position in ("output", "input"):
        model = _petal(_Tiny(), target_modules=["linear"], dropout=0.5, dropout_position=position)
        x = torch.randn(64, 6)
        model.train()
        torch.manual_seed(0)
        noisy = model(x, petal_quality=0.5)[0]
        model.eval()
        clean = model(x, petal_quality=0.5)[0]
        assert not torch.allclose(noisy, clean)
        torch.testing.assert_close(clean, model(x, petal_quality=0.5)[0])


# ---------------------------------------------------------------- peft features


def test_several_adapters_and_disabling() -> None:
    base = _Tiny()
    x = torch.randn(2, 6)
    reference = base(x)[0].detach().clone()
    model = _petal(base, target_modules=["linear"])
    model.add_adapter("second", PetalConfig(r=2, target_modules=["linear"], dropout=0.0, init_weights=False))
    first_out = model(x, petal_quality=0.5)[0]
    model.set_adapter("second")
    second_out = model(x, petal_quality=0.5)[0]
    assert not torch.allclose(first_out, second_out)
    model.base_model.set_adapter(["default", "second"])
    both = model(x, petal_quality=0.5)[0]
    torch.testing.assert_close(both - reference, (first_out - reference) + (second_out - reference))
    with model.disable_adapter():
        torch.testing.assert_close(model(x)[0], reference)


def test_adapters_must_share_the_quality_input() -> None:
    model = _petal(_Tiny(), target_modules=["linear"])
    with pytest.raises(ValueError, match="share the quality input: `quality_key`"):
        model.add_adapter("other", PetalConfig(target_modules=["linear"], quality_key="q"))


def test_merge_at_a_fixed_quality_then_unmerge() -> None:
    model = _petal(_Tiny(), target_modules=["linear", "conv"], single_branch_modules=["linear"])
    x, image = torch.randn(2, 6), torch.randn(2, 3, 5, 5)
    expected = model(x, image, petal_quality=0.3)
    unmerged_weight = model.base_model.model.conv.base_layer.weight.detach().clone()
    with pytest.raises(ValueError, match="merging needs a fixed quality"):
        model.merge_adapter()
    model.base_model.model.linear.unmerge()  # the single-branch layer merged before the error: put it back
    model.merge_adapter(quality=0.3)
    for got, want in zip(model(x, image, petal_quality=0.9), expected, strict=True):
        torch.testing.assert_close(got, want)  # merged: the quality no longer matters
    model.unmerge_adapter()
    torch.testing.assert_close(model.base_model.model.conv.base_layer.weight, unmerged_weight)
    merged = model.merge_and_unload(quality=0.3)
    assert isinstance(merged, _Tiny) and not any(isinstance(m, PetalLayer) for m in merged.modules())
    for got, want in zip(merged(x, image), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_save_and_load_in_a_fresh_process(tmp_path: Path) -> None:
    base = _bert()
    base.save_pretrained(tmp_path / "base")
    model = _petal(base, target_modules=["query", "value"], single_branch_modules=["pooler.dense"])
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    expected = model(input_ids=_ids(), petal_quality=_q(0, 0.3, 0.7, 1)).last_hidden_state
    torch.save(expected, tmp_path / "expected.pt")
    code = f"""
import torch, hf_margin
from peft import AutoPeftModel, PeftConfig, PeftModel
from transformers import BertModel
from hf_margin.tuners.petal import PetalConfig
folder = {str(tmp_path)!r}
ids = torch.randint(0, 50, (4, 6), generator=torch.Generator().manual_seed(1))
q = torch.tensor([0, 0.3, 0.7, 1])
expected = torch.load(folder + "/expected.pt", weights_only=True)
assert isinstance(PeftConfig.from_pretrained(folder + "/adapter"), PetalConfig)
loaded = PeftModel.from_pretrained(BertModel.from_pretrained(folder + "/base"), folder + "/adapter").eval()
torch.testing.assert_close(loaded(input_ids=ids, petal_quality=q).last_hidden_state, expected)
auto = AutoPeftModel.from_pretrained(folder + "/adapter").eval()
torch.testing.assert_close(auto(input_ids=ids, petal_quality=q).last_hidden_state, expected)
base = BertModel.from_pretrained(folder + "/base")
trainable = PeftModel.from_pretrained(base, folder + "/adapter", is_trainable=True)
assert trainable.get_nb_trainable_parameters()[0] > 0
print("ok")
"""
    (tmp_path / "adapter" / "adapter_config.json").write_text(
        (tmp_path / "adapter" / "adapter_config.json")
        .read_text()
        .replace('"base_model_name_or_path": null', f'"base_model_name_or_path": "{tmp_path / "base"}"')
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


# ---------------------------------------------------------------- the quality input


def test_quality_never_reaches_the_base_model() -> None:
    model = _petal(_Tiny(), target_modules=["linear"])
    model(torch.randn(2, 6), petal_quality=_q(0.2, 0.4), other=1)
    assert model.base_model.model.received == {"other": 1}


def test_custom_quality_key_and_default_quality() -> None:
    model = _petal(_Tiny(), target_modules=["linear"], quality_key="resolution_score", default_quality=0.25)
    x = torch.randn(2, 6)
    torch.testing.assert_close(model(x)[0], model(x, resolution_score=0.25)[0])
    assert not torch.allclose(model(x)[0], model(x, resolution_score=0.75)[0])


def test_quality_is_clipped_by_default() -> None:
    model = _petal(_Tiny(), target_modules=["linear"])
    x = torch.randn(2, 6)
    torch.testing.assert_close(model(x, petal_quality=_q(-0.5, 1.7))[0], model(x, petal_quality=_q(0.0, 1.0))[0])


@pytest.mark.parametrize(
    ("kwargs", "quality", "error", "match"),
    [
        ({}, None, ValueError, r"PETAL needs the quality of each sample: call the model with `petal_quality="),
        ({}, _q(0.1, 0.2, 0.3), ValueError, r"`petal_quality` has 3 values but the batch has 2 samples"),
        ({"clip_quality": False}, _q(0.1, 1.5), ValueError, r"`petal_quality` must lie in \[0, 1\] when clip_quality"),
        ({}, _q(0.1, float("nan")), ValueError, "`petal_quality` must be finite"),
        ({}, torch.ones(2, 2), ValueError, r"`petal_quality` must have shape \(batch,\)"),
        ({}, "high", TypeError, "`petal_quality` must be a number or a tensor"),
    ],
)
def test_bad_quality_raises_a_clear_error(kwargs: dict, quality: object, error: type, match: str) -> None:
    model = _petal(_Tiny(), target_modules=["linear"], **kwargs)
    arguments = {} if quality is None else {"petal_quality": quality}
    with pytest.raises(error, match=match):
        model(torch.randn(2, 6), **arguments)


def test_disabled_adapters_need_no_quality() -> None:
    model = _petal(_Tiny(), target_modules=["linear"])
    with model.disable_adapter():
        model(torch.randn(2, 6))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target_modules": ["norm"]}, TypeError, r"PETAL adapts nn.Linear and nn.Conv2d modules; target `norm`"),
        ({"target_modules": None}, ValueError, "`target_modules` must name the modules to adapt"),
        ({"target_modules": ["linear"], "r": 0}, ValueError, "`r` must be an integer >= 1"),
        ({"target_modules": ["linear"], "dropout": 1.0}, ValueError, r"`dropout` must lie in \[0, 1\)"),
        ({"target_modules": ["linear"], "bias": "some"}, ValueError, "`bias` must be"),
        ({"target_modules": ["linear"], "dropout_position": "middle"}, ValueError, "`dropout_position` must be"),
    ],
)
def test_bad_config_raises_a_clear_error(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        get_peft_model(_Tiny(), PetalConfig(**kwargs))


def test_grouped_convolutions_are_refused() -> None:
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4))
    with pytest.raises(TypeError, match="groups=1 only"):
        get_peft_model(model, PetalConfig(target_modules=["0"]))


def test_petal_conv_layer_type() -> None:
    model = _petal(_Tiny(), target_modules=["conv"])
    assert isinstance(model.base_model.model.conv, PetalConv2d)
    assert model.base_model.model.conv.petal_B["default"].shape == (4, 2 * R, 1, 1)


# ---------------------------------------------------------------- Trainer


def test_quality_column_reaches_the_model_through_petal_trainer(tmp_path: Path) -> None:
    from transformers import BertForSequenceClassification, TrainingArguments

    from hf_margin.trainers import PetalTrainer, quality_keys

    datasets = pytest.importorskip("datasets")
    torch.manual_seed(0)
    classifier = BertForSequenceClassification(_bert().config)
    model = _petal(classifier, target_modules=["query", "value"], modules_to_save=["classifier"])
    assert quality_keys(model) == ["petal_quality"]
    seen: list[torch.Tensor] = []
    layer = model.base_model.model.bert.encoder.layer[0].attention.self.query
    layer.register_forward_pre_hook(lambda module, args: seen.append(module.quality.clone()))
    ids = _ids(8)
    data = datasets.Dataset.from_dict(
        {
            "input_ids": ids.tolist(),
            "labels": [0, 1] * 4,
            "petal_quality": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
            "text": ["unused"] * 8,
        }
    )
    args = TrainingArguments(
        str(tmp_path), max_steps=2, per_device_train_batch_size=4, report_to=[], save_strategy="no", use_cpu=True
    )
    PetalTrainer(model=model, args=args, train_dataset=data).train()
    assert sorted(round(v, 4) for q in seen for v in q.tolist()) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


def _petal_trainer_parts(tmp_path: Path, **config: object) -> tuple[PeftModel, object]:
    from transformers import BertForSequenceClassification, TrainingArguments

    torch.manual_seed(0)
    model = _petal(BertForSequenceClassification(_bert().config), target_modules=["query", "value"], **config)
    args = TrainingArguments(
        str(tmp_path), max_steps=1, per_device_train_batch_size=4, report_to=[], save_strategy="no", use_cpu=True
    )
    return model, args


def _quality_rows(quality: list | None) -> object:
    datasets = pytest.importorskip("datasets")
    rows = {"input_ids": _ids(4).tolist(), "labels": [0, 1, 0, 1]}
    return datasets.Dataset.from_dict(rows if quality is None else rows | {"petal_quality": quality})


@pytest.mark.parametrize(
    ("quality", "config", "match"),
    [
        (None, {}, r"PetalTrainer needs a `petal_quality` column in `train_dataset`.*or set `default_quality`"),
        (["high", "low", "high", "low"], {}, r"`petal_quality` must hold numbers, got string"),
        ([0.1, 0.2, float("nan"), 0.4], {}, r"`petal_quality` must be finite; NaN or inf at rows \[2\]"),
        ([0.1, None, 0.3, 0.4], {}, r"`petal_quality` must have no missing values; missing at rows \[1\]"),
        ([[0.1], [0.2], [0.3], [0.4]], {}, r"`petal_quality` must hold numbers, got list<item: double>"),
        (
            [0.1, 1.5, 0.3, -0.2],
            {"clip_quality": False},
            r"`petal_quality` must lie in \[0, 1\] \(clip_quality=False\); outside at rows \[1, 3\]",
        ),
        ([], {}, r"`train_dataset` is empty"),
    ],
)
def test_petal_trainer_refuses_bad_quality_columns_at_construction(
    tmp_path: Path, quality: list | None, config: dict, match: str
) -> None:
    from hf_margin.trainers import PetalTrainer

    model, args = _petal_trainer_parts(tmp_path, **config)
    data = _quality_rows(quality) if quality != [] else _quality_rows([0.1] * 4).select([])
    with pytest.raises(ValueError, match=match):
        PetalTrainer(model=model, args=args, train_dataset=data)


def test_petal_trainer_needs_no_quality_column_with_a_default_quality(tmp_path: Path) -> None:
    from hf_margin.trainers import PetalTrainer

    model, args = _petal_trainer_parts(tmp_path, default_quality=0.5)
    PetalTrainer(model=model, args=args, train_dataset=_quality_rows(None)).train()
    model, args = _petal_trainer_parts(tmp_path, clip_quality=True)
    PetalTrainer(model=model, args=args, train_dataset=_quality_rows([0.1, 1.5, 0.3, -0.2]))  # clipped: fine
