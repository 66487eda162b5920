"""Dataset condensation by gradient matching: learn a few synthetic images per class whose training gradients match
the real data's (DC) or, with contrastive signals, the real data's summed over classes (DCC).

Paper: "Dataset Condensation with Contrastive Signals" (Lee, Chun, Jung, Yun, Yoon; ICML 2022, arXiv 2202.02916);
the loop is DC's ("Dataset Condensation with Gradient Matching", arXiv 2006.05929). Per outer iteration a fresh
network from `model_fn`; then `inner_loop` times: match (L_DC or L_DCC of hf_margin.functional.gradient_matching,
chosen by the bi-level warm-up `use_contrastive`), one SGD step on the synthetic images, and `network_steps`
full-batch SGD steps of the network on the (detached) synthetic set.

Choices and omissions: no DSA augmentation (DSAC) is applied; a network update is one full-batch step on the whole
synthetic set (the official code runs an epoch with batch 256, the same for sets up to 256 images); networks with
BatchNorm get their statistics from a real batch of 16 per class at each matching step and are then put in eval
mode for the matching, as in the official code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from tqdm.auto import tqdm

from hf_margin._validation import check_choice, check_label_vector, check_positive, check_positive_int
from hf_margin.functional.gradient_matching import dc_loss, dcc_loss, use_contrastive

METHODS = ("dcc", "dc")
BN_REAL_PER_CLASS = 16  # the official code's real batch per class for BatchNorm statistics


@dataclass
class CondensedSet:
    """The synthetic set: `images` (classes x images_per_class, ...), `labels` (class-major), and the matching loss
    of every step (`losses`, with `contrastive` saying which steps used DCC)."""

    images: Tensor
    labels: Tensor
    losses: list[float] = field(default_factory=list)
    contrastive: list[bool] = field(default_factory=list)


def _freeze_batch_norm(model: nn.Module, real: list[Tensor], generator: torch.Generator) -> None:
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        return
    batch = torch.cat([r[torch.randperm(len(r), generator=generator)[:BN_REAL_PER_CLASS]] for r in real])
    model.train()
    with torch.no_grad():
        model(batch)
    for module in norms:
        module.eval()


def condense(
    model_fn: Callable[[], nn.Module],
    real_images: Tensor,
    real_labels: Tensor,
    images_per_class: int,
    method: str = "dcc",
    outer_loop: int = 1000,
    inner_loop: int = 10,
    network_steps: int = 5,
    lr_img: float = 0.1,
    momentum: float = 0.5,
    lr_net: float = 0.01,
    batch_real: int = 256,
    outer_warmup: int = 250,
    inner_warmup: int = 10,
    seed: int = 0,
    progress: bool = True,
) -> CondensedSet:
    """Condense (`real_images`, `real_labels`) to `images_per_class` synthetic images per class.

    Paper: arXiv 2202.02916 (DCC) / arXiv 2006.05929 (DC). Defaults are the official code's for ipc 1 (for ipc 10
    it uses ``network_steps=50``, for ipc 50 ``inner_loop=50, network_steps=10``).

    Args:
        model_fn: makes a fresh network (images -> logits over the classes) per outer iteration.
        real_images: (n, ...) floating tensor.
        real_labels: (n,) class indices 0..C-1, every class present.
        images_per_class: synthetic images per class; initialised from random real images of that class.
        method: "dcc" (DC during the warm-up, then DCC) or "dc".
        outer_loop: networks (outer iterations).
        inner_loop: matching steps per network.
        network_steps: network updates on the synthetic set after each matching step (none after the last).
        lr_img: SGD learning rate of the synthetic images.
        momentum: SGD momentum of the synthetic images.
        lr_net: SGD learning rate of the network updates.
        batch_real: real images per class per matching step (all of a class if it has fewer).
        outer_warmup: DCC's outer warm-up (networks matched with DC first).
        inner_warmup: DCC's inner warm-up (matching steps per network with DC first).
        seed: seed of the initialisation and the real batches (seed `model_fn` yourself for its networks).
        progress: show a tqdm bar over the outer iterations.

    Example:
        >>> result = condense(lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), x, y, 1, outer_loop=20)
        >>> result.images.shape, result.labels
        (torch.Size([10, 64]), tensor([0, 1, ..., 9]))
    """
    if not isinstance(real_images, Tensor) or not real_images.is_floating_point() or real_images.dim() < 2:
        got = (
            f"{real_images.dtype} of shape {tuple(real_images.shape)}"
            if isinstance(real_images, Tensor)
            else type(real_images).__name__
        )
        raise ValueError(f"`real_images` must be a floating tensor of shape (n, ...), got {got}")
    labels = check_label_vector(real_labels, real_images.shape[0], "real_labels", kind="class indices")
    if int(labels.min()) < 0:
        raise ValueError(f"`real_labels` must be class indices >= 0, got minimum {int(labels.min())}")
    counts = torch.bincount(labels)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"`real_labels` must cover every class 0..{len(counts) - 1}; missing {missing}")
    check_positive_int(images_per_class, "images_per_class")
    check_choice(method, "method", METHODS)
    for name, value in (("outer_loop", outer_loop), ("inner_loop", inner_loop), ("batch_real", batch_real)):
        check_positive_int(value, name)
    if isinstance(network_steps, bool) or not isinstance(network_steps, int) or network_steps < 0:
        raise ValueError(f"`network_steps` must be an integer >= 0, got {network_steps!r}")
    for name, rate in (("lr_img", lr_img), ("lr_net", lr_net)):
        check_positive(rate, name)
    if not 0 <= momentum < 1:
        raise ValueError(f"`momentum` must lie in [0, 1), got {momentum}")

    generator = torch.Generator().manual_seed(seed)
    real = [real_images[labels == c].detach() for c in range(len(counts))]
    initial = [r[torch.randperm(len(r), generator=generator)[:images_per_class]] for r in real]
    # a class with fewer real images than images_per_class repeats them (a random draw with replacement)
    initial = [
        i[torch.randint(len(i), (images_per_class,), generator=generator)] if len(i) < images_per_class else i
        for i in initial
    ]
    synthetic = torch.stack(initial).clone().requires_grad_(True)  # (classes, ipc, ...)
    optimizer = torch.optim.SGD([synthetic], lr=lr_img, momentum=momentum)
    syn_labels = torch.arange(len(real)).repeat_interleave(images_per_class)
    result = CondensedSet(images=synthetic.detach(), labels=syn_labels)

    for outer in tqdm(range(outer_loop), desc=f"condensing ({method})", unit="net", disable=not progress):
        model = model_fn()
        net_optimizer = torch.optim.SGD(model.parameters(), lr=lr_net)
        for inner in range(inner_loop):
            batches = [r[torch.randperm(len(r), generator=generator)[:batch_real]] for r in real]
            _freeze_batch_norm(model, batches, generator)
            contrastive = method == "dcc" and use_contrastive(outer, inner, outer_warmup, inner_warmup)
            loss = (dcc_loss if contrastive else dc_loss)(model, batches, list(synthetic))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            result.losses.append(float(loss.detach()))
            result.contrastive.append(contrastive)
            if inner == inner_loop - 1:
                break
            model.train()
            flat = synthetic.detach().flatten(0, 1)
            for _ in range(network_steps):
                net_optimizer.zero_grad()
                F.cross_entropy(model(flat), syn_labels).backward()
                net_optimizer.step()
    result.images = synthetic.detach().flatten(0, 1).clone()
    return result
