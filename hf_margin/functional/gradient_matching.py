"""Gradient-matching losses for dataset condensation: DC's class-wise matching and DCC's contrastive matching.

Paper: "Dataset Condensation with Contrastive Signals" (Lee, Chun, Jung, Yun, Yoon; ICML 2022, arXiv 2202.02916),
which builds on DC ("Dataset Condensation with Gradient Matching", Zhao, Mopuri, Bilen; arXiv 2006.05929).
With g(X) the gradient of the mean cross-entropy on batch X w.r.t. the network's parameters, real batches T_c and
synthetic batches S_c per class c of C:

    L_DC  = sum_c D(g(S_c), g(T_c))
    L_DCC = D(g(S), (1/C) sum_c g(T_c)),    S = S_1 u ... u S_C (one softmax across all classes: the contrast)
    D(a, b) = sum_layers sum_rows (1 - <a_row, b_row> / (|a_row| |b_row| + 1e-6))

A parameter of 2 or more dimensions is cut into rows along its first axis (a conv weight into out x (in k k), a 3-D
weight into C x (h w)); 1-D parameters (biases, normalisation scales) contribute 0, as in the official code.
DCC's bi-level warm-up matches with DC until `use_contrastive` turns true.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hf_margin._precision import at_least_float32

COSINE_EPS = 1e-6  # the official code's constant in the cosine's denominator

LossFn = Callable[[Tensor, Tensor], Tensor]


def _check_gradient_lists(grads_a: Sequence[Tensor], grads_b: Sequence[Tensor]) -> None:
    for name, grads in (("grads_a", grads_a), ("grads_b", grads_b)):
        if isinstance(grads, Tensor) or not all(isinstance(g, Tensor) for g in grads):
            raise TypeError(f"`{name}` must be a sequence of tensors (one per parameter), got {type(grads).__name__}")
    if len(grads_a) != len(grads_b):
        raise ValueError(
            f"`grads_a` and `grads_b` must hold one tensor per parameter each, got {len(grads_a)} and "
            f"{len(grads_b)} tensors"
        )
    for i, (a, b) in enumerate(zip(grads_a, grads_b, strict=True)):
        if a.shape != b.shape:
            raise ValueError(
                f"`grads_a[{i}]` and `grads_b[{i}]` must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
            )


def gradient_matching_distance(grads_a: Sequence[Tensor], grads_b: Sequence[Tensor]) -> Tensor:
    """DC/DCC's layer-wise distance D between two gradients of the same network, a scalar in [0, 2 #rows].

    Paper: arXiv 2202.02916 (DCC), distance of arXiv 2006.05929 (DC).
    Formula: D = sum_layers sum_rows (1 - cos(a_row, b_row)), cos with +1e-6 in its denominator; a parameter of
    dim >= 2 is reshaped to (shape[0], -1); 1-D (and 0-D) parameters contribute 0.

    Args:
        grads_a: one gradient tensor per parameter (e.g. of the synthetic batch).
        grads_b: the matching gradients, same count and shapes (e.g. of the real batch).

    Example:
        >>> a = [torch.tensor([[1.0, 0.0], [0.0, 1.0]])]
        >>> b = [torch.tensor([[1.0, 0.0], [1.0, 0.0]])]
        >>> gradient_matching_distance(a, b)  # rows: 1 - 1, 1 - 0
        tensor(1.0000)
    """
    _check_gradient_lists(grads_a, grads_b)
    total: Tensor | None = None
    for a, b in zip(grads_a, grads_b, strict=True):
        if a.dim() < 2:
            continue
        a_rows, b_rows = at_least_float32(a).reshape(a.shape[0], -1), at_least_float32(b).reshape(b.shape[0], -1)
        cosine = (a_rows * b_rows).sum(-1) / (a_rows.norm(dim=-1) * b_rows.norm(dim=-1) + COSINE_EPS)
        term = (1 - cosine).sum()
        total = term if total is None else total + term
    if total is None:
        reference = grads_a[0] if len(grads_a) else torch.zeros(())
        return torch.zeros((), dtype=at_least_float32(reference).dtype, device=reference.device)
    return total


def parameter_gradients(
    model: nn.Module, images: Tensor, labels: Tensor, create_graph: bool = False, loss_fn: LossFn = F.cross_entropy
) -> list[Tensor]:
    """g(X): the gradient of ``loss_fn(model(images), labels)`` w.r.t. the model's trainable parameters.

    With `create_graph` the gradients stay differentiable w.r.t. `images` (the synthetic side); without it they are
    detached (the real side).

    Args:
        model: any module mapping `images` to logits (batch, classes).
        images: the batch.
        labels: class indices (batch,).
        create_graph: keep the graph for a second differentiation.
        loss_fn: the classification loss (mean over the batch); cross-entropy as in the paper.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("`model` must have at least one parameter with requires_grad=True")
    loss = loss_fn(at_least_float32(model(images)), labels)
    grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
    grads = tuple(torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True))
    return list(grads) if create_graph else [g.detach() for g in grads]


def _check_class_batches(real: Sequence[Tensor], synthetic: Sequence[Tensor]) -> None:
    for name, batches in (("real", real), ("synthetic", synthetic)):
        if isinstance(batches, Tensor) or not all(isinstance(b, Tensor) for b in batches):
            raise TypeError(
                f"`{name}` must be a sequence of tensors (one batch per class), got {type(batches).__name__}"
            )
        if len(batches) == 0:
            raise ValueError(f"`{name}` must hold one batch per class (at least 1 class), got 0 batches")
        empty = [c for c, b in enumerate(batches) if b.dim() == 0 or b.shape[0] == 0]
        if empty:
            raise ValueError(f"`{name}` batches must be non-empty (batch, ...) tensors; empty for classes {empty}")
    if len(real) != len(synthetic):
        raise ValueError(
            f"`real` and `synthetic` must hold one batch per class each, got {len(real)} and {len(synthetic)} batches"
        )
    for c, (r, s) in enumerate(zip(real, synthetic, strict=True)):
        if r.shape[1:] != s.shape[1:]:
            raise ValueError(
                f"`real[{c}]` and `synthetic[{c}]` must share the per-image shape, got "
                f"{tuple(r.shape[1:])} and {tuple(s.shape[1:])}"
            )


def _labels(batch: Tensor, label: int) -> Tensor:
    return torch.full((batch.shape[0],), label, dtype=torch.long, device=batch.device)


def dc_loss(
    model: nn.Module, real: Sequence[Tensor], synthetic: Sequence[Tensor], loss_fn: LossFn = F.cross_entropy
) -> Tensor:
    """DC's class-wise gradient-matching loss, differentiable w.r.t. the synthetic images.

    Paper: arXiv 2006.05929 (DC), as the baseline and warm-up of arXiv 2202.02916 (DCC).
    Formula: L_DC = sum_c D(g(S_c), g(T_c)).

    Args:
        model: network mapping images to logits; batch ``c`` of each list has class index ``c``.
        real: real images per class, ``real[c]`` of shape (n_c, ...).
        synthetic: synthetic images per class, ``synthetic[c]`` of shape (m_c, ...).
        loss_fn: classification loss (mean over the batch).

    Example:
        >>> loss = dc_loss(net, [x0, x1], [s0, s1])
        >>> loss.backward()  # gradients on s0, s1
    """
    _check_class_batches(real, synthetic)
    total: Tensor | None = None
    for c, (r, s) in enumerate(zip(real, synthetic, strict=True)):
        g_real = parameter_gradients(model, r, _labels(r, c), loss_fn=loss_fn)
        g_syn = parameter_gradients(model, s, _labels(s, c), create_graph=True, loss_fn=loss_fn)
        term = gradient_matching_distance(g_syn, g_real)
        total = term if total is None else total + term
    assert total is not None  # at least one class, checked above
    return total


def dcc_loss(
    model: nn.Module, real: Sequence[Tensor], synthetic: Sequence[Tensor], loss_fn: LossFn = F.cross_entropy
) -> Tensor:
    """DCC's contrastive gradient-matching loss, differentiable w.r.t. the synthetic images.

    Paper: "Dataset Condensation with Contrastive Signals", arXiv 2202.02916.
    Formula: L_DCC = D(g(S_1 u ... u S_C), (1/C) sum_c g(T_c)); the synthetic gradient is of the mean loss over
    all synthetic images together (with a balanced set, (1/C) sum_c of the per-class mean losses).

    Args:
        model: network mapping images to logits; batch ``c`` of each list has class index ``c``.
        real: real images per class, ``real[c]`` of shape (n_c, ...).
        synthetic: synthetic images per class, ``synthetic[c]`` of shape (m_c, ...).
        loss_fn: classification loss (mean over the batch).

    Example:
        >>> loss = dcc_loss(net, [x0, x1], [s0, s1])
        >>> loss.backward()
    """
    _check_class_batches(real, synthetic)
    per_class = [parameter_gradients(model, r, _labels(r, c), loss_fn=loss_fn) for c, r in enumerate(real)]
    g_real = [torch.stack(layer).mean(0) for layer in zip(*per_class, strict=True)]
    images = torch.cat(list(synthetic))
    labels = torch.cat([_labels(s, c) for c, s in enumerate(synthetic)])
    g_syn = parameter_gradients(model, images, labels, create_graph=True, loss_fn=loss_fn)
    return gradient_matching_distance(g_syn, g_real)


def use_contrastive(
    outer_iteration: int, inner_iteration: int, outer_warmup: int = 250, inner_warmup: int = 10
) -> bool:
    """DCC's bi-level warm-up switch: match with DCC iff ``outer_iteration >= outer_warmup`` or
    ``inner_iteration >= inner_warmup``, else with DC.

    Paper: arXiv 2202.02916 (official code's defaults 250 and 10; with 10 inner iterations, indices 0..9, only the
    outer condition ever fires).

    Args:
        outer_iteration: index of the current network (0-based).
        inner_iteration: index of the matching step on that network (0-based).
        outer_warmup: networks matched with DC before DCC.
        inner_warmup: matching steps per network with DC before DCC.

    Example:
        >>> use_contrastive(0, 3), use_contrastive(250, 0), use_contrastive(0, 10)
        (False, True, True)
    """
    for name, value in (
        ("outer_iteration", outer_iteration),
        ("inner_iteration", inner_iteration),
        ("outer_warmup", outer_warmup),
        ("inner_warmup", inner_warmup),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}")
    return outer_iteration >= outer_warmup or inner_iteration >= inner_warmup
