"""`PositiveShareSampler`: batches that keep a fixed share of positives (LibAUC's DualSampler idea, our code).

AUC losses compare positives with negatives inside a batch; with a rare positive class most batches would hold
none. Every batch of this sampler holds ``round(share x batch_size)`` positives, drawn without replacement from a
reshuffled pool that restarts when used up (so rare positives are oversampled), and the rest negatives; an epoch
ends when every negative has been drawn once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from hf_margin._validation import check_in_range, check_positive_int


class PositiveShareSampler(Sampler[int]):
    """Row indices whose consecutive groups of `batch_size` each hold a chosen share of positives.

    Args:
        labels: per-row binary labels (1 = positive).
        batch_size: the batch size the indices are grouped into (the data loader's).
        positive_share: the share of positives per batch, in (0, 1).
        seed: shuffling seed; `set_epoch` varies it per epoch.
    """

    def __init__(
        self, labels: Sequence[int] | torch.Tensor, batch_size: int, positive_share: float, seed: int = 0
    ) -> None:
        check_positive_int(batch_size, "batch_size")
        check_in_range(positive_share, "positive_share", 1e-9, 1 - 1e-9)
        labels = torch.as_tensor(labels)
        if not ((labels == 0) | (labels == 1)).all():
            raise ValueError("`labels` must be binary (0 = negative, 1 = positive) for PositiveShareSampler")
        self.positives = torch.nonzero(labels == 1).flatten()
        self.negatives = torch.nonzero(labels == 0).flatten()
        self.per_batch = min(batch_size - 1, max(1, round(positive_share * batch_size)))
        if len(self.positives) == 0 or len(self.negatives) == 0:
            raise ValueError(
                f"`labels` need both classes; got {len(self.positives)} positives and {len(self.negatives)} negatives"
            )
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        self.batches = math.ceil(len(self.negatives) / (batch_size - self.per_batch))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        negatives = self.negatives[torch.randperm(len(self.negatives), generator=g)]
        pool: list[int] = []
        per_negative = self.batch_size - self.per_batch
        for batch in range(self.batches):
            while len(pool) < self.per_batch:
                pool += self.positives[torch.randperm(len(self.positives), generator=g)].tolist()
            chosen = pool[: self.per_batch] + negatives[batch * per_negative : (batch + 1) * per_negative].tolist()
            del pool[: self.per_batch]
            if len(chosen) < self.batch_size:  # the last batch: refill with negatives from the start
                chosen += negatives[: self.batch_size - len(chosen)].tolist()
            yield from (chosen[i] for i in torch.randperm(len(chosen), generator=g).tolist())
