"""Base for pair-based metric-learning losses and miners with pytorch-metric-learning's (PML 2.9.0) call contract.

Call contract (what PML users already write)::

    loss = SomeLoss()(embeddings, labels=None, indices_tuple=None, ref_emb=None, ref_labels=None)

- `embeddings` (B, D) are the batch's rows (the anchors); `ref_emb` (R, D) / `ref_labels` (R,) the rows they are
  compared with. Without `ref_emb` the reference is the batch itself (also when `ref_emb is embeddings`), and
  the self-pairs (i, i) are excluded from the positives, as PML's `get_all_pairs_indices` does.
- `indices_tuple` picks the pairs: `(a1, p, a2, n)` (positive pairs (a1[k], p[k]), negative pairs (a2[k], n[k]))
  or triplets `(a, p, n)` (turned into the pairs `(a, p, a, n)`). Anchors index `embeddings`, p/n index the
  reference. Without a tuple every same-label pair is positive and every different-label pair negative (then
  `labels` is required). Pairs become (B, R) boolean masks, so a pair listed twice counts once (as PML's
  matrix-based losses do).
- `reduction`: "mean" divides the summed per-anchor losses by the number of anchors (all of them, also those
  without any pair: PML's `MeanReducer`), "sum" adds them, "none" returns the per-anchor losses (B,).
  Losses whose value is already a mean over pairs (e.g. TCM) return per-anchor shares of it and use "sum".
- `gather_across_processes=True`: under an initialised torch.distributed group, embeddings and labels (or
  `ref_emb`/`ref_labels`) of all processes are all-gathered with gradient, and this process's rows are
  compared with the whole gathered batch (its self-pairs sit at its rank's offset; p/n of an `indices_tuple`
  then index the gathered reference, as the gathering miners return them). The result is scaled so that the
  average over processes of the loss, and hence DDP's averaged gradients, equal those of one process with the
  whole batch: "mean" returns ``world * sum_local / total_rows``, "sum" ``world * sum_local``. Without an
  initialised group the option does nothing. "none" returns the unscaled local per-anchor losses.

Subclassing: a loss implements ``compute_loss(batch: PairBatch) -> Tensor`` returning per-anchor losses (B,)
(use `batch.similarities()` for the cosine matrix, and `batch.global_sum` for counts that must cover every
process); a miner calls `pair_batch` under `torch.no_grad()` and returns index tuples. Only cosine similarity is
built in (PML's default for Multi-Similarity and TCM).

Example:
    >>> class MyLoss(MetricLossBase):
    ...     def compute_loss(self, batch):
    ...         sim = batch.similarities()
    ...         return ((1 - sim) * batch.pos_mask).sum(1)
    >>> MyLoss(reduction="mean")(embeddings, labels)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from hf_margin._gather import all_reduce_sum, distributed_world, gather_rows, gathered_sizes
from hf_margin._precision import at_least_float32, full_precision
from hf_margin._reduction import REDUCTIONS
from hf_margin._validation import check_choice, check_embeddings, check_label_vector
from hf_margin.functional.contrastive import similarity_matrix

IndicesTuple = Sequence[Tensor]


@dataclass(frozen=True)
class PairBatch:
    """A batch's rows, its reference rows and which (row, reference) pairs are positive or negative.

    Attributes:
        embeddings: (B, D) this process's rows (the anchors).
        ref_emb: (R, D) the reference rows (the gathered batch under `gather_across_processes`).
        pos_mask: (B, R) bool, positive pairs.
        neg_mask: (B, R) bool, negative pairs.
        total_rows: anchors over all processes (B without distribution).
        world_size: processes that took part (1 without distribution).
        distributed: whether rows were gathered across processes.
    """

    embeddings: Tensor
    ref_emb: Tensor
    pos_mask: Tensor
    neg_mask: Tensor
    total_rows: int
    world_size: int
    distributed: bool

    def similarities(self) -> Tensor:
        """(B, R) cosine similarities, computed in float32 under bf16/fp16 and autocast (float64 stays float64)."""
        with full_precision(self.embeddings):
            return similarity_matrix(at_least_float32(self.embeddings), at_least_float32(self.ref_emb))

    def global_sum(self, value: Tensor) -> Tensor:
        """`value` summed over the processes (no gradient) when distributed, else unchanged."""
        return all_reduce_sum(value) if self.distributed else value


def _check_index(index: object, position: int, upper: int, what: str) -> Tensor:
    if not isinstance(index, torch.Tensor) or index.is_floating_point() or index.dim() != 1:
        got = tuple(index.shape) if isinstance(index, torch.Tensor) else type(index).__name__
        raise ValueError(f"`indices_tuple[{position}]` must be a 1-D integer tensor, got {got}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= upper):
        raise ValueError(
            f"`indices_tuple[{position}]` indexes {what} and must lie in [0, {upper - 1}], got values "
            f"in [{int(index.min())}, {int(index.max())}]"
        )
    return index.long()


def tuple_masks(indices_tuple: IndicesTuple, rows: int, ref_rows: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(rows, ref_rows) positive and negative masks from a pair tuple (a1, p, a2, n) or a triplet tuple (a, p, n)."""
    if not isinstance(indices_tuple, (tuple, list)) or len(indices_tuple) not in (3, 4):
        got = len(indices_tuple) if isinstance(indices_tuple, (tuple, list)) else type(indices_tuple).__name__
        raise ValueError(f"`indices_tuple` must be (a1, p, a2, n) pairs or (a, p, n) triplets, got {got}")
    batch_rows, ref = (rows, "the batch rows"), (ref_rows, "the reference rows")
    spans = (batch_rows, ref, batch_rows, ref) if len(indices_tuple) == 4 else (batch_rows, ref, ref)
    checked = [
        _check_index(index, k, upper, what)
        for k, (index, (upper, what)) in enumerate(zip(indices_tuple, spans, strict=True))
    ]
    a1, p, a2, n = checked if len(checked) == 4 else (checked[0], checked[1], checked[0], checked[2])
    if len(a1) != len(p) or len(a2) != len(n):
        raise ValueError(
            f"`indices_tuple` must pair equally long index tensors, got lengths "
            f"{[len(index) for index in indices_tuple]}"
        )
    pos = torch.zeros(rows, ref_rows, dtype=torch.bool, device=device)
    neg = torch.zeros_like(pos)
    pos[a1.to(device), p.to(device)] = True
    neg[a2.to(device), n.to(device)] = True
    if (pos & neg).any():
        raise ValueError("`indices_tuple` lists a pair both as positive and as negative")
    return pos, neg


def pair_batch(
    embeddings: Tensor,
    labels: Tensor | None = None,
    indices_tuple: IndicesTuple | None = None,
    ref_emb: Tensor | None = None,
    ref_labels: Tensor | None = None,
    gather: bool = False,
) -> PairBatch:
    """Check the PML-style inputs and build the `PairBatch` (gathering across processes when asked)."""
    check_embeddings(embeddings)
    rows = embeddings.shape[0]
    if labels is not None:
        labels = check_label_vector(labels, rows, "labels").to(embeddings.device)
    if ref_emb is None and ref_labels is not None:
        raise ValueError("`ref_labels` was given without `ref_emb`; pass both, or neither to use the batch itself")
    self_reference = ref_emb is None or ref_emb is embeddings
    if ref_emb is None or self_reference:
        ref_emb, ref_labels = embeddings, labels
    else:
        check_embeddings(ref_emb, embeddings.shape[1], name="ref_emb")
        if ref_labels is not None:
            ref_labels = check_label_vector(ref_labels, ref_emb.shape[0], "ref_labels").to(embeddings.device)
    if indices_tuple is None and (labels is None or ref_labels is None):
        raise ValueError("`labels` (and `ref_labels` with `ref_emb`) are required when no `indices_tuple` is given")
    assert ref_emb is not None  # for mypy: set above
    rank, world = distributed_world()
    distributed = gather and world > 1
    total_rows, offset = rows, 0
    if distributed:
        sizes = gathered_sizes(rows, embeddings.device)
        total_rows, offset = sum(sizes), sum(sizes[:rank])
        ref_sizes = sizes if self_reference else gathered_sizes(ref_emb.shape[0], embeddings.device)
        ref_emb = gather_rows(ref_emb, ref_sizes)
        ref_labels = None if ref_labels is None else gather_rows(ref_labels, ref_sizes)
    if indices_tuple is not None:
        pos, neg = tuple_masks(indices_tuple, rows, ref_emb.shape[0], embeddings.device)
    else:
        assert labels is not None and ref_labels is not None  # checked above
        pos = labels.unsqueeze(1) == ref_labels.unsqueeze(0)
        neg = ~pos
        if self_reference:
            pos[torch.arange(rows, device=pos.device), torch.arange(offset, offset + rows, device=pos.device)] = False
    return PairBatch(embeddings, ref_emb, pos, neg, total_rows, world if distributed else 1, distributed)


class MetricLossBase(nn.Module):
    """Base module for pair-based metric losses with PML's call contract (see the module docstring).

    Subclass it (``from hf_margin.losses import MetricLossBase``) and implement `compute_loss`; set the class
    attribute `citation` to the paper's BibTeX so that `hf_margin.embeddings.MetricLearningLoss` cites it.

    Args:
        reduction: "mean" (over all anchors, PML's MeanReducer), "sum" or "none" (per-anchor losses).
        gather_across_processes: compare this process's rows with the embeddings of all processes (with
            gradient) under torch.distributed, scaled so that DDP's averaged gradients equal one big batch's.
    """

    citation: ClassVar[str] = ""
    """BibTeX of the loss's paper (empty: none); sentence-transformers' model cards print it."""

    def __init__(self, reduction: str = "mean", gather_across_processes: bool = False):
        super().__init__()
        check_choice(reduction, "reduction", REDUCTIONS)
        self.reduction = reduction
        self.gather_across_processes = gather_across_processes

    def compute_loss(self, batch: PairBatch) -> Tensor:
        """Per-anchor losses (B,) for `batch`; subclasses implement it."""
        raise NotImplementedError

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        indices_tuple: IndicesTuple | None = None,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        batch = pair_batch(embeddings, labels, indices_tuple, ref_emb, ref_labels, self.gather_across_processes)
        return self.reduce(self.compute_loss(batch), batch)

    def reduce(self, losses: Tensor, batch: PairBatch) -> Tensor:
        """Per-anchor losses to the reported value (scaled for distributed runs, see the module docstring)."""
        if self.reduction == "none":
            return losses
        total = losses.sum() * batch.world_size
        return total if self.reduction == "sum" else total / batch.total_rows
