"""Hyperspherical embedding for novel classes: the normalised-softmax loss and imprinted class prototypes.

Paper: Pereira, Joly, Valduriez, Porto, "Hyperspherical embedding for novel class classification",
arXiv 2102.03243 (its code is the `pyopenset` package; written here from the formulas of the spec).

- Training: embeddings ``z = s f / ||f||`` on the sphere of radius ``s``, class vectors ``w_j`` of unit norm and no
  bias, cross-entropy on ``logit_j = <z, w_j> = s cos(theta_j)`` (NormalizedSoftmax of Zhai & Wu with
  temperature ``1 / s``, no margin). The loss here takes the cosine of each class vector whatever its norm, so
  its value is the paper's whenever the class vectors have unit norm (they do after each projected update).
- A novel class is added without gradient steps: its vector is the normalised mean of its normalised embeddings,
  ``w_new = mean_i(z_i / ||z_i||) / ||mean_i(z_i / ||z_i||)||`` (``s`` and each sample's scale cancel).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_embeddings, check_label_vector
from hf_margin.functional.few_shot import class_prototypes
from hf_margin.functional.margin_heads import Reduction, margin_softmax_loss


def unchanged_target(cos_y: Tensor) -> Tensor:
    """The target cosine without a margin (the target function of the hyperspherical head)."""
    return cos_y


def hyperspherical_loss(
    embeddings: Tensor, weight: Tensor, labels: Tensor, scale: float = 10.0, reduction: Reduction = "mean"
) -> Tensor:
    """Cross-entropy on ``s cos(theta_j)`` between embeddings and class vectors, without margin or bias.

    Paper: Pereira et al., arXiv 2102.03243 (``s = 10`` is its package's default). Equals
    `cosface_loss` with ``margin=0`` and `pytorch_metric_learning.losses.NormalizedSoftmaxLoss` with
    ``temperature = 1 / s``; see `hf_margin.heads.HypersphericalHead`.

    Args:
        embeddings: (B, D) features (any norm: only their direction counts).
        weight: (C, D) class vectors (any norm: only their direction counts).
        labels: (B,) class indices in [0, C).
        scale: the sphere's radius ``s`` (a positive finite number).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> hyperspherical_loss(torch.tensor([[3.0, 4.0]]), torch.eye(2), torch.tensor([1]))  # tensor(0.1269)
    """
    return margin_softmax_loss(embeddings, weight, labels, unchanged_target, scale, reduction)


def hyperspherical_prototypes(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Imprinted class vectors: ``(classes (K,), prototypes (K, D))``, each the normalised mean of the class's
    normalised embeddings (the paper's ``AddNewClass``), in float32 (float64 for float64 input).

    Paper: Pereira et al., arXiv 2102.03243. The classes are the sorted distinct `labels` (any integers). A class
    whose normalised embeddings cancel out (or are all zero) gets a zero prototype: it has no direction.

    Args:
        embeddings: (N, D) embeddings of the new classes' samples (any norm).
        labels: (N,) integer class ids.

    Example:
        >>> hyperspherical_prototypes(torch.tensor([[1.0, 1.0], [2.0, 0.5]]), torch.tensor([0, 0]))[1]
        tensor([[0.8702, 0.4927]])
    """
    check_embeddings(embeddings)  # named as here, before `class_prototypes` checks them as its "support"
    check_label_vector(labels, embeddings.shape[0])
    classes, means = class_prototypes(_directions(at_least_float32(embeddings)), labels)
    return classes, F.normalize(means, dim=1)


def _directions(rows: Tensor) -> Tensor:
    """Each row over its norm, first divided by its largest entry so that the norm cannot overflow (rows near the
    dtype's maximum), a zero row staying zero."""
    largest = rows.abs().amax(1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)
    return F.normalize(rows / largest, dim=1)
