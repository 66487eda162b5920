"""PETAL layers: a frozen `nn.Linear` / `nn.Conv2d` plus, per adapter, two LoRA branches gated by the quality q.

The two branches are stored and computed as one rank-2r pair (A: 2r x in, B: out x 2r): the first r rows of A
(and columns of B) are branch 1, weighted by 1 - q, the last r are branch 2, weighted by q. The gate is a
per-sample scaling of the rank-2r activations, so a two-branch adapter costs what a rank-2r LoRA costs.
Single-branch adapters (the paper's feature projection) hold rank-r factors and ignore q.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from peft.tuners.tuners_utils import BaseTunerLayer, check_adapters_to_merge
from torch import Tensor, nn


class PetalLayer(BaseTunerLayer):
    """State shared by the PETAL layer types: the adapters' factors, their options, and the current quality."""

    adapter_layer_names = ("petal_A", "petal_B")
    other_param_names = ("r", "scale", "branches", "dropout_position", "petal_dropout")

    def __init__(self, base_layer: nn.Module, **kwargs: Any) -> None:
        self.base_layer = base_layer
        self.r: dict[str, int] = {}
        self.scale: dict[str, float] = {}
        self.branches: dict[str, int] = {}
        self.dropout_position: dict[str, str] = {}
        self.petal_dropout = nn.ModuleDict({})
        self.petal_A = nn.ParameterDict({})
        self.petal_B = nn.ParameterDict({})
        self._disable_adapters = False
        self.merged_adapters: list[str] = []
        self.kwargs = kwargs
        # Per-sample quality of the current batch, set by PetalModel at every forward of the model. It stays until
        # the next forward, because activation checkpointing re-runs this layer during backward.
        self.quality: Tensor | None = None
        self.quality_key = "petal_quality"
        self._merged_quality: dict[str, float | None] = {}
        self.merge_quality: float | None = None  # set by PetalModel.merge_adapter / merge_and_unload

    def update_layer(
        self,
        adapter_name: str,
        r: int,
        scale: float,
        dropout: float,
        dropout_position: str,
        branches: int,
        init_weights: bool,
        inference_mode: bool = False,
    ) -> None:
        """Add (or replace) adapter `adapter_name` with `branches` (1 or 2) rank-`r` branches."""
        self.r[adapter_name] = r
        self.scale[adapter_name] = scale
        self.branches[adapter_name] = branches
        self.dropout_position[adapter_name] = dropout_position
        self.petal_dropout[adapter_name] = nn.Dropout(dropout)
        a_shape, b_shape = self._factor_shapes(branches * r)
        self.petal_A[adapter_name] = nn.Parameter(torch.empty(a_shape))
        self.petal_B[adapter_name] = nn.Parameter(torch.empty(b_shape))
        self.reset_petal_parameters(adapter_name, init_weights)
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters, inference_mode=inference_mode)

    def _factor_shapes(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        raise NotImplementedError

    def reset_petal_parameters(self, adapter_name: str, init_weights: bool = True) -> None:
        """A ~ N(0, (1/r)^2) (the official code); B = 0, or drawn like A when `init_weights` is False."""
        std = 1.0 / self.r[adapter_name]
        nn.init.normal_(self.petal_A[adapter_name], std=std)
        if init_weights:
            nn.init.zeros_(self.petal_B[adapter_name])
        else:
            nn.init.normal_(self.petal_B[adapter_name], std=std)

    # ------------------------------------------------------------------ quality

    def _batch_quality(self, rows: int) -> Tensor:
        """The quality of each of `rows` input rows: one value per sample, repeated when a model folds extra
        dimensions into the batch (Swin's windows: image-major, so each image's windows share its q)."""
        if self.quality is None:
            raise ValueError(
                f"PETAL needs the quality of each sample: call the model with `{self.quality_key}=<tensor of shape "
                "(batch,)>`, or set `default_quality` in the PetalConfig"
            )
        samples = self.quality.shape[0]
        if rows == samples:
            return self.quality
        if rows % samples:
            raise ValueError(
                f"`{self.quality_key}` has {samples} values but an adapted layer's input has batch dimension {rows}; "
                "pass one quality per sample"
            )
        return self.quality.repeat_interleave(rows // samples)

    def _gate(self, adapter: str, rows: int, dims: int, channel_dim: int, like: Tensor) -> Tensor:
        """The factor of each rank-2r channel: 1 - q on branch 1, q on branch 2, shaped to broadcast."""
        quality = self._batch_quality(rows).to(device=like.device, dtype=like.dtype)
        gate = torch.stack([1.0 - quality, quality], dim=1).repeat_interleave(self.r[adapter], dim=1)
        shape = [rows] + [1] * (dims - 1)
        shape[channel_dim] = gate.shape[1]
        return gate.view(shape)

    # ------------------------------------------------------------------ forward

    def _down(self, adapter: str, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _up(self, adapter: str, h: Tensor, weight: Tensor) -> Tensor:
        raise NotImplementedError

    channel_dim = -1

    def _adapter_output(self, adapter: str, x: Tensor) -> Tensor:
        dropout = self.petal_dropout[adapter]
        assert isinstance(dropout, nn.Dropout)
        # Dropout with p = 0 would still allocate a mask and a copy in training mode: skip it.
        drop_input = dropout.p > 0 and self.dropout_position[adapter] == "input"
        drop_output = dropout.p > 0 and self.dropout_position[adapter] == "output"
        weight_a, weight_b = self.petal_A[adapter], self.petal_B[adapter]
        x = x.to(weight_a.dtype)
        h = self._down(adapter, dropout(x) if drop_input else x)
        r, two_branches = self.r[adapter], self.branches[adapter] == 2
        if two_branches:
            h = h * self._gate(adapter, h.shape[0], h.dim(), self.channel_dim, h)
        if two_branches and drop_output and dropout.training:  # independent masks per branch, as the official code
            low, high = h.split(r, dim=self.channel_dim)
            out = dropout(self._up(adapter, low, weight_b[:, :r])) + dropout(self._up(adapter, high, weight_b[:, r:]))
        else:
            out = self._up(adapter, h, weight_b)
            out = dropout(out) if drop_output else out
        scale = self.scale[adapter]
        return out if scale == 1.0 else out * scale

    def _petal_forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if self.disable_adapters:
            if self.merged:
                self.unmerge()
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        if self.merged:
            return result
        for adapter in self.active_adapters:
            if adapter in self.petal_A:
                result = result + self._adapter_output(adapter, x).to(result.dtype)
        return result

    # ------------------------------------------------------------------ merging

    def get_delta_weight(self, adapter: str, quality: float | None = None) -> Tensor:
        """The weight change of `adapter` at a fixed quality (two-branch adapters need one)."""
        weight_a, weight_b = self.petal_A[adapter], self.petal_B[adapter]
        gate = torch.ones(weight_a.shape[0], dtype=weight_a.dtype, device=weight_a.device)
        if self.branches[adapter] == 2:
            if quality is None:
                raise ValueError(
                    "PETAL blends its two branches per sample; merging needs a fixed quality: "
                    "`model.merge_and_unload(quality=q)` or `model.merge_adapter(quality=q)`"
                )
            if not 0.0 <= quality <= 1.0:
                raise ValueError(f"the merge `quality` must lie in [0, 1], got {quality}")
            r = self.r[adapter]
            gate[:r], gate[r:] = 1.0 - quality, quality
        return (
            self._delta_from_factors(weight_a * gate.view(-1, *[1] * (weight_a.dim() - 1)), weight_b)
            * (self.scale[adapter])
        )

    def _delta_from_factors(self, weight_a: Tensor, weight_b: Tensor) -> Tensor:
        raise NotImplementedError

    def merge(
        self, safe_merge: bool = False, adapter_names: list[str] | None = None, quality: float | None = None
    ) -> None:
        """Fold the active adapters, at quality `quality`, into the base weight."""
        adapter_names = check_adapters_to_merge(self, adapter_names)
        quality = quality if quality is not None else self.merge_quality
        weight = self._base_weight()
        for adapter in adapter_names:
            if adapter not in self.petal_A:
                continue
            merged = weight.data + self.get_delta_weight(adapter, quality).detach().to(weight.dtype)
            if safe_merge and not torch.isfinite(merged).all():
                raise ValueError(f"merging adapter {adapter!r} gives non-finite weights; it seems to be broken")
            weight.data = merged
            self._merged_quality[adapter] = quality
            self.merged_adapters.append(adapter)

    def unmerge(self) -> None:
        """Take the merged adapters back out of the base weight (at the quality they were merged with)."""
        if not self.merged:
            warnings.warn("Already unmerged. Nothing to do.", stacklevel=2)
            return
        weight = self._base_weight()
        while self.merged_adapters:
            adapter = self.merged_adapters.pop()
            delta = self.get_delta_weight(adapter, self._merged_quality.pop(adapter)).detach()
            weight.data -= delta.to(weight.dtype)

    def _base_weight(self) -> Tensor:
        weight = self.get_base_layer().weight
        assert isinstance(weight, Tensor)
        return weight


class _PetalModule(nn.Module, PetalLayer):
    """nn.Module glue: nn.Module comes first in the MRO (peft's convention), so `forward` is defined here."""

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return self._petal_forward(x, *args, **kwargs)

    def __repr__(self) -> str:
        return "petal." + super().__repr__()


class PetalLinear(_PetalModule):
    """PETAL around an `nn.Linear`."""

    def __init__(self, base_layer: nn.Linear, adapter_name: str, **update_kwargs: Any) -> None:
        super().__init__()
        PetalLayer.__init__(self, base_layer)
        base = self.get_base_layer()
        assert isinstance(base, nn.Linear)
        self.in_features, self.out_features = base.in_features, base.out_features
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, **update_kwargs)

    def _factor_shapes(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (rank, self.in_features), (self.out_features, rank)

    def _down(self, adapter: str, x: Tensor) -> Tensor:
        return F.linear(x, self.petal_A[adapter])

    def _up(self, adapter: str, h: Tensor, weight: Tensor) -> Tensor:
        return F.linear(h, weight)

    def _delta_from_factors(self, weight_a: Tensor, weight_b: Tensor) -> Tensor:
        return weight_b @ weight_a


class PetalConv2d(_PetalModule):
    """PETAL around an `nn.Conv2d` (groups = 1): A is a conv with the base kernel, B a 1x1 conv."""

    channel_dim = 1

    def __init__(self, base_layer: nn.Conv2d, adapter_name: str, **update_kwargs: Any) -> None:
        super().__init__()
        PetalLayer.__init__(self, base_layer)
        base = self._conv()
        if base.groups != 1:
            raise TypeError(f"PETAL adapts nn.Conv2d with groups=1 only; this one has groups={base.groups}")
        self.in_features, self.out_features = base.in_channels, base.out_channels
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, **update_kwargs)

    def _conv(self) -> nn.Conv2d:
        base = self.get_base_layer()
        assert isinstance(base, nn.Conv2d)
        return base

    def _factor_shapes(self, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (rank, self.in_features, *self._conv().kernel_size), (self.out_features, rank, 1, 1)

    def _down(self, adapter: str, x: Tensor) -> Tensor:
        base = self._conv()
        return F.conv2d(x, self.petal_A[adapter], None, base.stride, base.padding, base.dilation)

    def _up(self, adapter: str, h: Tensor, weight: Tensor) -> Tensor:
        return F.conv2d(h, weight)

    def _delta_from_factors(self, weight_a: Tensor, weight_b: Tensor) -> Tensor:
        return (weight_b.flatten(1) @ weight_a.flatten(1)).view(self._base_weight().shape)
