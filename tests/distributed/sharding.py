"""FSDP2 (`torch.distributed.fsdp.fully_shard`) applied the way accelerate's TRANSFORMER_BASED_WRAP does it: one
FSDP unit per module whose class is named in a `PreTrainedModel`'s ``_no_split_modules``, then the root."""

from __future__ import annotations

import torch
from torch import nn


def block_names(model: nn.Module) -> set[str]:
    """The class names in every submodule's ``_no_split_modules`` (transformers' unit of sharding)."""
    return {name for module in model.modules() for name in (getattr(module, "_no_split_modules", None) or [])}


def shard_like_transformers(model: nn.Module) -> list[str]:
    """Shard `model` in place over the default process group, on the device type of its parameters (CPU with
    gloo, CUDA with NCCL); the names of the inner units."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    device_type = next(model.parameters()).device.type
    mesh = init_device_mesh(device_type, (torch.distributed.get_world_size(),))
    names = block_names(model)
    units = [name for name, module in model.named_modules() if type(module).__name__ in names]
    for name in units:
        fully_shard(model.get_submodule(name), mesh=mesh)
    fully_shard(model, mesh=mesh)
    return units


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded state dict, on every rank (a collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
