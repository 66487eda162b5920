"""AdaFace: a margin that adapts to image quality, with the feature norm as the quality proxy.

Paper: Kim, Jain, Liu, "AdaFace: Quality Adaptive Margin for Face Recognition", arXiv 2204.00964.
Defaults are the official README's usage (m=0.4, h=0.333, s=64, t_alpha=0.01).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import torch
import torch.distributed as dist
from torch import Tensor, nn

from hf_margin._gather import distributed_world
from hf_margin._validation import check_number_in_range
from hf_margin.functional.margin_heads import (
    Reduction,
    adaface_margin_scaler,
    adaface_target,
    check_cosine_margin,
    check_eps,
)
from hf_margin.heads.base import MarginHead


class AdaFaceHead(MarginHead):
    """AdaFace head: per-sample margin from the standardised feature norm ``z`` (EMA statistics).

    ``z = clip(h (||x|| - mu) / (sigma + eps), -1, 1)``; target logit ``s (cos(clip(theta - m z)) - m - m z)``,
    other logits ``s clip(cos theta_j, -1 + eps, 1 - eps)`` (the official code clamps every cosine; the
    margin-free logits of `get_logits` are not clamped). Low-norm (low-quality) samples get an ArcFace-like
    angular margin, average ones a CosFace-like margin, high-norm ones emphasise hard samples. ``mu`` and
    ``sigma`` are EMAs of the batch mean and (unbiased) std of the norms, kept as buffers (so they are saved
    in the state dict) and updated in training mode only, before the batch uses them, as in the official
    code. A batch of one leaves ``sigma`` unchanged.

    A batch with a non-finite embedding leaves ``mu`` and ``sigma`` unchanged (the update is masked on the
    device, without a host sync) and gives a non-finite loss, so the next finite batch trains as if the bad one
    never came and no NaN reaches a saved state dict. A call rejected for its arguments changes nothing.

    Under torch.distributed with more than one process (DDP, FSDP), the statistics are those of the batch of
    all processes (``sync_statistics``, on by default): two all-reduces, of (sum, count, non-finite count) and
    of the squared deviations from the global mean, no host sync. Every process then keeps the ``mu`` and
    ``sigma`` of one process trained on the whole batch; without it each would follow its own share of the
    batch, and DDP would overwrite them all with rank 0's at the next forward.

    The embeddings must be the *unnormalised* features: their norm is the quality signal.

    Args:
        embedding_size: dimension of the embeddings.
        num_classes: number of classes (identities).
        margin: ``m`` (0.4).
        h: concentration of the norm scaler ``h`` (0.333); ``h=0`` gives CosFace(m).
        scale: logit scale ``s`` (64).
        t_alpha: EMA weight of the new batch statistic (0.01); 1.0 uses the current batch only.
        eps: clamp for cosines and angles, and added to ``sigma`` (1e-3, as the official code).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        sync_statistics: compute ``mu`` and ``sigma`` over every process's batch (True); `PartialFCHead`, whose
            embeddings are already gathered, turns it off.
    """

    batch_mean: Tensor
    batch_std: Tensor
    INITIAL_MEAN = 20.0  # the official code's starting statistics
    INITIAL_STD = 100.0

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        margin: float = 0.4,
        h: float = 0.333,
        scale: float = 64.0,
        t_alpha: float = 0.01,
        eps: float = 1e-3,
        reduction: Reduction = "mean",
        sync_statistics: bool = True,
    ) -> None:
        super().__init__(embedding_size, num_classes, scale, reduction)
        if not isinstance(sync_statistics, bool):
            raise TypeError(f"`sync_statistics` must be a bool, got {type(sync_statistics).__name__}")
        self.sync_statistics = sync_statistics
        check_cosine_margin(margin)
        check_number_in_range(h, "h", 0.0, 10.0)
        check_number_in_range(t_alpha, "t_alpha", 0.0, 1.0)
        check_eps(eps)
        self.margin, self.h, self.t_alpha, self.eps = float(margin), float(h), float(t_alpha), float(eps)
        self.cosine_eps = self.eps
        self.register_buffer("batch_mean", torch.tensor(self.INITIAL_MEAN))
        self.register_buffer("batch_std", torch.tensor(self.INITIAL_STD))

    def reset_parameters(self, init: ModuleType = nn.init) -> None:
        super().reset_parameters(init)
        if "batch_mean" in self._buffers:  # absent while the base class's __init__ runs
            init.constant_(self.batch_mean, self.INITIAL_MEAN)
            init.constant_(self.batch_std, self.INITIAL_STD)

    @torch.no_grad()
    def _update_statistics(self, norms: Tensor, finite: Tensor) -> None:
        """One EMA step of the norm statistics, kept only where `finite` (a 0-d bool tensor) holds."""
        keep = 1 - self.t_alpha
        batch_mean, batch_std, count, finite = self._batch_statistics(norms, finite)
        mean = self.batch_mean * keep + self.t_alpha * batch_mean.to(self.batch_mean)
        self.batch_mean.copy_(torch.where(finite, mean, self.batch_mean))
        if count > 1:
            std = self.batch_std * keep + self.t_alpha * batch_std.to(self.batch_std)
            self.batch_std.copy_(torch.where(finite, std, self.batch_std))

    def _batch_statistics(self, norms: Tensor, finite: Tensor) -> tuple[Tensor, Tensor, int, Tensor]:
        """(mean, unbiased std, row count, all finite) of the norms of this batch, or of every process's batch
        when `sync_statistics` and more than one process: the mean from all-reduced sums, then the std from
        all-reduced squared deviations around it (two-pass, as ``Tensor.std``)."""
        _, world = distributed_world()
        if not self.sync_statistics or world == 1:
            return norms.mean(), norms.std() if norms.numel() > 1 else norms.new_zeros(()), norms.numel(), finite
        totals = torch.stack([norms.sum(), norms.new_tensor(float(norms.numel())), (~finite).to(norms.dtype)])
        dist.all_reduce(totals)
        mean = totals[0] / totals[1]
        squares = ((norms - mean) ** 2).sum()
        dist.all_reduce(squares)
        # the row count is the same on every process under a data-parallel sampler; it is read from the
        # world size (no host sync), and only decides whether a std exists (a global batch of one row)
        count = norms.numel() * world
        std = (squares / (totals[1] - 1).clamp_min(1)).sqrt()
        return mean, std, count, totals[2] == 0

    def target_fn(self, embeddings: Tensor) -> Callable[[Tensor], Tensor]:
        def target(cos_y: Tensor) -> Tensor:
            features = embeddings.detach()
            # The clamp would turn an infinite norm into 100: finiteness is read from the embeddings themselves.
            norms = features.to(cos_y.dtype).norm(dim=1).clamp(0.001, 100.0)
            if self.training:
                self._update_statistics(norms, torch.isfinite(features).all())
            scaler = adaface_margin_scaler(
                norms, self.batch_mean.to(cos_y.dtype), self.batch_std.to(cos_y.dtype), self.h, self.eps
            )
            return adaface_target(cos_y, scaler, self.margin, self.eps)

        return target

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}, h={self.h}, t_alpha={self.t_alpha}"
