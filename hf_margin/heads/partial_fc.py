"""Partial FC: a cosine margin head whose class centres are sharded over processes, with sampled negatives.

Paper: An, Zhu, Xiao, Feng, Zhang, Fu, Deng, Liu, Chen, "Partial FC: Training 10 Million Identities on a Single
Machine", arXiv 2010.05222. Written from the paper's description (positive centres always kept plus a random
``sample_rate`` share of the negative centres, centres split by rank, an all-gather of the features, a softmax
whose normaliser is all-reduced); no code is taken from insightface.
"""

from __future__ import annotations

import math
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hf_margin._gather import distributed_world, gather_rows, gathered_sizes, scale_gradient
from hf_margin._precision import full_precision
from hf_margin._validation import check_embeddings, check_numbers, check_positive_int
from hf_margin.functional.cosine_softmax import normalized_linear
from hf_margin.functional.margin_heads import (
    Reduction,
    check_reduction,
    checked_labels,
    clamp_cosines,
    compute_dtype,
)
from hf_margin.functional.sharded_cross_entropy import NOT_OWNED, sharded_margin_cross_entropy
from hf_margin.heads import HEAD_TYPES
from hf_margin.heads.adaface import AdaFaceHead
from hf_margin.heads.base import MarginHead
from hf_margin.heads.softmax import SoftmaxHead


def shard_range(num_classes: int, rank: int, world: int) -> tuple[int, int]:
    """``(start, stop)`` of the contiguous class ids owned by `rank`; the first ``num_classes % world`` get one more."""
    base, extra = divmod(num_classes, world)
    start = rank * base + min(rank, extra)
    return start, start + base + int(rank < extra)


def sample_centres(labels: Tensor, num_local: int, sample_rate: float) -> Tensor:
    """Sorted indices of the kept local centres: every id in `labels` plus random others (torch's global RNG),
    ``ceil(sample_rate * num_local)`` in all, or all positives when they alone are more.

    Args:
        labels: local class ids (in ``[0, num_local)``) of the positives of this batch.
        num_local: number of centres on this process.
        sample_rate: share of the centres to keep, in (0, 1].
    """
    positives = torch.unique(labels)
    keep = max(math.ceil(sample_rate * num_local), positives.numel())
    if keep >= num_local:
        return torch.arange(num_local, device=labels.device)
    scores = torch.rand(num_local, device=labels.device)
    scores[positives] = 2.0  # above every uniform draw: positives always survive the top-k
    return torch.topk(scores, keep, sorted=False).indices.sort().values


def _margin_template(margin_head: str | type[MarginHead], embedding_size: int, **head_kwargs: object) -> MarginHead:
    head_type = HEAD_TYPES.get(margin_head) if isinstance(margin_head, str) else margin_head
    if not isinstance(head_type, type) or not issubclass(head_type, MarginHead) or issubclass(head_type, SoftmaxHead):
        cosine_heads = sorted(name for name, cls in HEAD_TYPES.items() if not issubclass(cls, SoftmaxHead))
        raise ValueError(
            f"`margin_head` must be a cosine margin head: one of {', '.join(cosine_heads)} or a MarginHead "
            f"subclass other than SoftmaxHead; got {margin_head!r}"
        )
    try:
        template = head_type(embedding_size, 1, **head_kwargs)  # type: ignore[arg-type]
    except TypeError as error:
        raise TypeError(f"bad `head_kwargs` for margin_head={margin_head!r}: {error}") from error
    # Only its margin (target function, scale, margin statistics) is used; the centres live in PartialFCHead.
    template.weight = nn.Parameter(torch.empty(0, embedding_size), requires_grad=False)
    if isinstance(template, AdaFaceHead):  # its statistics already see the gathered batch
        template.sync_statistics = False
    return template


class PartialFCHead(nn.Module):
    """Partial FC: any cosine margin head with class centres sharded by rank and negatives sampled per step.

    Paper: An et al., "Partial FC: Training 10 Million Identities on a Single Machine", arXiv 2010.05222.

    Under an initialised torch.distributed group of `world` processes, process ``r`` holds the contiguous
    centres `shard_range` ``(num_classes, r, world)``; without one it holds them all. A training step
    all-gathers the embeddings (with gradient) and labels of every process, keeps on each process the centres
    of the positives in its shard plus random negatives (``ceil(sample_rate * shard size)`` in all, the
    positives always kept), applies the margin head's target function to the owned rows and computes
    ``loss_i = -log(exp(s t_i) / (exp(s t_i) + sum_{sampled j != y_i} exp(s cos_ij)))`` with the max and the
    sum of exponentials all-reduced over processes. Every process returns the same loss, the mean (or sum) over
    the gathered batch. Each process's centres get the gradient of this global loss; its embeddings get `world`
    times it, so that the backbone gradient DDP averages over processes equals the full-batch gradient of one
    process (the convention of every hf_margin loss that gathers).

    Choices and limits:
        * Negatives are sampled in training mode only; in eval mode every centre is scored.
        * Unsampled centres get a zero gradient (dense, not sparse): an optimiser with momentum or weight decay
          still moves them, as in a dense head.
        * Do not wrap this module in DistributedDataParallel (its centres differ per process); wrap the backbone.
        * ``reduction="none"`` returns the (B_total,) losses of the gathered batch, rows in rank order.
        * The margin statistics of AdaFace are updated from the gathered batch (identical on every process),
          and left unchanged by a batch with a non-finite embedding on any process (masked on the device);
          ElasticFace margins are drawn on the owning process.
        * Negatives are drawn from torch's global RNG; a call rejected for its arguments draws nothing, and a
          batch with non-finite values draws as a finite one of the same labels would (no host sync to skip it).
        * ``fp16`` logits of insightface's implementation are not offered: cosines and logits are computed in
          float32 (float64 for float64 inputs) outside autocast, as in every hf_margin head.

    Args:
        margin_head: a cosine head name of `hf_margin.heads.HEAD_TYPES` (``"arcface"``, ``"cosface"``,
            ``"combined"``, ``"elastic_arcface"``, ``"elastic_cosface"``, ``"adaface"``) or a `MarginHead`
            subclass; its target function and scale are used.
        embedding_size: dimension of the embeddings.
        num_classes: total number of classes over all processes.
        sample_rate: share of each shard's centres scored per training step, in (0, 1] (paper: 0.1).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        **head_kwargs: the margin head's own arguments (``margin``, ``scale``, ...).

    Example:
        >>> head = PartialFCHead("arcface", 512, 1_000_000, sample_rate=0.1, margin=0.5, scale=64)
        >>> loss = head(embeddings, labels)   # each process passes its own batch; same loss on every process
    """

    def __init__(
        self,
        margin_head: str | type[MarginHead],
        embedding_size: int,
        num_classes: int,
        sample_rate: float = 1.0,
        reduction: Reduction = "mean",
        **head_kwargs: object,
    ) -> None:
        super().__init__()
        check_positive_int(embedding_size, "embedding_size")
        check_positive_int(num_classes, "num_classes")
        check_numbers(sample_rate=sample_rate)
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"`sample_rate` must lie in (0, 1], got {sample_rate}")
        check_reduction(reduction)
        self.margin_head = _margin_template(margin_head, embedding_size, **head_kwargs)
        self.embedding_size, self.num_classes = embedding_size, num_classes
        self.sample_rate, self.reduction = float(sample_rate), reduction
        self.rank, self.world = distributed_world()
        if num_classes < self.world:
            raise ValueError(f"`num_classes` must be >= the world size {self.world}, got {num_classes}")
        self.class_start, self.class_stop = shard_range(num_classes, self.rank, self.world)
        self.weight = nn.Parameter(torch.empty(self.class_stop - self.class_start, embedding_size))
        self.reset_parameters()

    def reset_parameters(self, init: ModuleType = nn.init) -> None:
        """Initialise this process's centres N(0, 0.01^2), as `MarginHead`."""
        init.normal_(self.weight, std=0.01)

    def _gather(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        if self.world == 1:
            return embeddings, labels
        sizes = gathered_sizes(embeddings.shape[0], embeddings.device)
        # DDP averages the backbone's gradients over processes; scaling this process's share by `world` makes
        # that average the full-batch gradient, as the gathered metric losses do.
        embeddings = scale_gradient(embeddings, float(self.world))
        return gather_rows(embeddings, sizes), gather_rows(labels, sizes)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The global margin cross-entropy. embeddings: (B, embedding_size) of this process; labels: (B,) long."""
        check_embeddings(embeddings, self.embedding_size)
        labels = checked_labels(labels, embeddings.shape[0], self.num_classes)
        if distributed_world() != (self.rank, self.world):
            raise ValueError(
                f"PartialFCHead was built for (rank, world) = {(self.rank, self.world)} but the process group is "
                f"now {distributed_world()}; build the head after torch.distributed.init_process_group"
            )
        all_embeddings, all_labels = self._gather(embeddings, labels)
        owned = (all_labels >= self.class_start) & (all_labels < self.class_stop)
        shard_labels = (all_labels - self.class_start).clamp(0, self.weight.shape[0] - 1)
        if self.training and self.sample_rate < 1.0:
            index = sample_centres(shard_labels[owned], self.weight.shape[0], self.sample_rate)
            centres = self.weight[index]
            shard_labels = torch.searchsorted(index, shard_labels).clamp_max(index.numel() - 1)
        else:
            centres = self.weight
        local_labels = torch.where(owned, shard_labels, NOT_OWNED)
        with full_precision(embeddings):
            dtype = compute_dtype(all_embeddings, centres)
            x_hat = F.normalize(all_embeddings.to(dtype), dim=1)
            cosine = clamp_cosines(normalized_linear(x_hat, centres.to(dtype)), self.margin_head.cosine_eps)
            # Rows owned elsewhere get cosine 0 here (a harmless placeholder, masked in the loss).
            cos_y = (x_hat * F.normalize(centres[shard_labels].to(dtype), dim=1)).sum(1) * owned
            target = self.margin_head.target_fn(all_embeddings)(cos_y)
            return sharded_margin_cross_entropy(cosine, target, local_labels, self.margin_head.scale, self.reduction)

    def extra_repr(self) -> str:
        return (
            f"embedding_size={self.embedding_size}, num_classes={self.num_classes}, sample_rate={self.sample_rate}, "
            f"shard=[{self.class_start}, {self.class_stop}) of world {self.world}"
        )
