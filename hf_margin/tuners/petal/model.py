"""`PetalModel`: the PEFT tuner that puts PETAL layers into a model and feeds them the per-sample quality."""

from __future__ import annotations

from typing import Any, cast

import torch
from peft.config import PeftConfig
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from torch import Tensor, nn

from hf_margin.tuners.petal.config import PetalConfig
from hf_margin.tuners.petal.layer import PetalConv2d, PetalLayer, PetalLinear

# Keyword arguments whose first dimension is the batch, used to check the quality's length early.
_BATCH_KEYS = ("input_ids", "pixel_values", "inputs_embeds", "input_values", "input_features", "x")


def _matches(key: str, names: list[str] | None) -> bool:
    return bool(names) and any(key == name or key.endswith("." + name) for name in names or [])


def prepare_quality(value: Any, config: PetalConfig, batch_size: int | None) -> Tensor:
    """Validate a quality argument and return it as a float32 (n,) tensor (n = batch, or 1 to broadcast)."""
    key = config.quality_key
    if isinstance(value, Tensor):
        quality = value.detach().to(torch.float32)
    else:
        try:
            quality = torch.as_tensor(value, dtype=torch.float32)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"`{key}` must be a number or a tensor of shape (batch,), got {type(value).__name__}"
            ) from error
    if quality.dim() == 0:
        quality = quality.reshape(1)
    elif quality.dim() == 2 and quality.shape[1] == 1:
        quality = quality.squeeze(1)
    if quality.dim() != 1 or quality.numel() == 0:
        raise ValueError(f"`{key}` must have shape (batch,), got shape {tuple(quality.shape)}")
    if not torch.isfinite(quality).all():
        raise ValueError(f"`{key}` must be finite, got {quality.tolist()}")
    if batch_size is not None and quality.shape[0] not in (1, batch_size):
        raise ValueError(f"`{key}` has {quality.shape[0]} values but the batch has {batch_size} samples")
    if config.clip_quality:
        return quality.clamp(0.0, 1.0)
    if (quality < 0).any() or (quality > 1).any():
        raise ValueError(
            f"`{key}` must lie in [0, 1] when clip_quality=False, got values in "
            f"[{quality.min().item():.4g}, {quality.max().item():.4g}]"
        )
    return quality


def _batch_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    for candidate in [*(kwargs.get(key) for key in _BATCH_KEYS), *args[:1]]:
        if isinstance(candidate, Tensor) and candidate.dim() > 0:
            return int(candidate.shape[0])
    return None


class PetalModel(BaseTuner):
    """Creates a PETAL model from a model (any `nn.Module` with `nn.Linear` / `nn.Conv2d` layers).

    Use it through peft: ``get_peft_model(model, PetalConfig(...))`` after ``import hf_margin``. The quality goes
    in as a forward keyword (``model(x, petal_quality=q)``, name set by `PetalConfig.quality_key`): a forward
    pre-hook on the base model takes it out of the keywords (so it never reaches the base model), checks it
    and hands it to every PETAL layer, where it stays until the next forward (activation checkpointing
    re-runs layers during backward).

    Merging needs a fixed quality: ``merge_and_unload(quality=q)`` / ``merge_adapter(quality=q)``.
    """

    prefix: str = "petal_"
    tuner_layer_cls = PetalLayer
    target_module_mapping: dict[str, list[str]] = {}  # noqa: RUF012 (peft's attribute; targets must be given)

    def __init__(
        self,
        model: nn.Module,
        config: PeftConfig | dict[str, PeftConfig],
        adapter_name: str,
        low_cpu_mem_usage: bool = False,
        state_dict: dict[str, Tensor] | None = None,
    ) -> None:
        self._layers: list[PetalLayer] | None = None  # the PETAL layers, found once per injection
        super().__init__(model, config, adapter_name, low_cpu_mem_usage=low_cpu_mem_usage, state_dict=state_dict)
        self._quality_hook = self.model.register_forward_pre_hook(self._take_quality, with_kwargs=True)

    # ------------------------------------------------------------------ adapters

    def _check_new_adapter_config(self, config: PetalConfig) -> None:  # type: ignore[override]
        super()._check_new_adapter_config(config)
        first = next(iter(self.peft_config.values()))
        for option in ("quality_key", "default_quality", "clip_quality"):
            if getattr(config, option) != getattr(first, option):
                raise ValueError(
                    f"all PETAL adapters of one model share the quality input: `{option}` is "
                    f"{getattr(first, option)!r} for the first adapter and {getattr(config, option)!r} for this one"
                )

    def _create_and_replace(  # type: ignore[override]
        self,
        config: PetalConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
        **optional_kwargs: Any,
    ) -> None:
        update: dict[str, Any] = {
            "r": config.r,
            "scale": config.scale,
            "dropout": config.dropout,
            "dropout_position": config.dropout_position,
            "branches": 1 if _matches(current_key, config.single_branch_modules) else 2,
            "init_weights": config.init_weights,
            "inference_mode": config.inference_mode,
        }
        self._layers = None
        if isinstance(target, PetalLayer):
            target.update_layer(adapter_name, **update)
            return
        new_module = self._create_new_module(target, target_name, adapter_name, update)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)
        self._replace_module(parent, target_name, new_module, target)

    @staticmethod
    def _create_new_module(target: nn.Module, target_name: str, adapter_name: str, update: dict[str, Any]) -> nn.Module:
        base = target.get_base_layer() if isinstance(target, BaseTunerLayer) else target
        if isinstance(base, nn.Linear):
            return PetalLinear(target, adapter_name, **update)  # type: ignore[arg-type]
        if isinstance(base, nn.Conv2d):
            return PetalConv2d(target, adapter_name, **update)  # type: ignore[arg-type]
        raise TypeError(
            f"PETAL adapts nn.Linear and nn.Conv2d modules; target `{target_name}` is a {type(base).__name__}. "
            "Narrow `target_modules` to linear or convolution layers"
        )

    def _petal_layers(self) -> list[PetalLayer]:
        if self._layers is None:  # walked once, not at every forward
            self._layers = [m for m in self.model.modules() if isinstance(m, PetalLayer)]
        return self._layers

    # ------------------------------------------------------------------ quality

    def _quality_config(self) -> PetalConfig:
        # All adapters share the quality options (`_check_new_adapter_config`).
        return cast(PetalConfig, next(iter(self.peft_config.values())))

    def _take_quality(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        config = self._quality_config()
        value = kwargs.pop(config.quality_key, None)
        if value is None and config.default_quality is not None:
            value = config.default_quality
        quality = None if value is None else prepare_quality(value, config, _batch_size(args, kwargs))
        for layer in self._petal_layers():
            layer.quality = quality
            layer.quality_key = config.quality_key
        return args, kwargs

    # ------------------------------------------------------------------ merging

    def _set_merge_quality(self, quality: float | None) -> None:
        for layer in self._petal_layers():
            layer.merge_quality = quality

    def merge_adapter(
        self, adapter_names: list[str] | None = None, safe_merge: bool = False, quality: float | None = None
    ) -> None:
        """Merge the adapters into the base weights at a fixed `quality` (needed for two-branch layers)."""
        self._set_merge_quality(quality)
        super().merge_adapter(adapter_names=adapter_names, safe_merge=safe_merge)

    def merge_and_unload(  # type: ignore[override]
        self,
        quality: float | None = None,
        progressbar: bool = False,
        safe_merge: bool = False,
        adapter_names: list[str] | None = None,
    ) -> nn.Module:
        """Merge at a fixed `quality` and return the base model (which then no longer takes a quality)."""
        self._set_merge_quality(quality)
        return self._unload_and_optionally_merge(
            progressbar=progressbar, safe_merge=safe_merge, adapter_names=adapter_names
        )

    def _unload_and_optionally_merge(  # type: ignore[override]
        self,
        merge: bool = True,
        progressbar: bool = False,
        safe_merge: bool = False,
        adapter_names: list[str] | None = None,
    ) -> nn.Module:
        model = super()._unload_and_optionally_merge(
            merge=merge, progressbar=progressbar, safe_merge=safe_merge, adapter_names=adapter_names
        )
        self._quality_hook.remove()
        self._layers = None
        return cast(nn.Module, model)
