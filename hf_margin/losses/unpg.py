"""UNPG on top of any of hf_margin's cosine margin heads; math in `hf_margin.functional.unpg`.

Paper: Jung, Lee, Lee, Kang, "Unified Negative Pair Generation toward Well-discriminative Feature Space for Face
Recognition", arXiv 2203.11593.
"""

from __future__ import annotations

from torch import Tensor, nn

from hf_margin._precision import full_precision
from hf_margin._reduction import REDUCTIONS
from hf_margin._validation import check_choice
from hf_margin.functional.margin_heads import Reduction, checked_cosines
from hf_margin.functional.unpg import box_and_whisker_mask, check_whisker, negative_pair_cosines, unpg_cross_entropy
from hf_margin.heads.base import MarginHead
from hf_margin.heads.softmax import SoftmaxHead


class UNPGLoss(nn.Module):
    """A margin head's cross-entropy with the batch's filtered negative-pair cosines appended to every row.

    ``L_i = -log(e^{s psi_iy} / (e^{s psi_iy} + sum_{j != y} e^{s cos theta_ij} + sum_{t in S'_n} e^{s t}))``,
    with ``psi`` the head's margin cosines and ``S'_n`` the box-and-whisker-filtered cosines of the batch's
    different-label pairs (see `hf_margin.functional.unpg`). The head's own margin rule, scale and state (AdaFace's
    norm statistics, ElasticFace's drawn margins) are used as they are; its centres are trained through this loss.

    The negative pairs come from the local batch (the official code does not gather them across processes either).

    Args:
        head: a cosine margin head (`ArcFaceHead`, `CosFaceHead`, `CombinedMarginHead`, ElasticFace, AdaFace);
            not `SoftmaxHead`, whose logits are not cosines.
        whisker: the whisker length ``k`` of the filter (1.5 in the paper's head zoo; 1.0 for its K-FACE models);
            ``inf`` keeps every negative pair, ``-inf`` none (the base head's loss).
        reduction: "mean", "sum" or "none"; defaults to the head's.

    Example:
        >>> head = ArcFaceHead(512, 1000, margin=0.5, scale=64.0)
        >>> loss = UNPGLoss(head)(embeddings, labels)
        >>> logits = head.get_logits(embeddings)  # inference, as without UNPG
    """

    def __init__(self, head: MarginHead, whisker: float = 1.5, reduction: Reduction | None = None) -> None:
        super().__init__()
        if not isinstance(head, MarginHead) or isinstance(head, SoftmaxHead):
            raise TypeError(
                f"`head` must be a cosine margin head of hf_margin.heads (ArcFace, CosFace, ...), "
                f"got {type(head).__name__}"
            )
        check_whisker(whisker)
        if reduction is not None:
            check_choice(reduction, "reduction", REDUCTIONS)
        self.head = head
        self.whisker = float(whisker)
        self.reduction: Reduction = head.reduction if reduction is None else reduction

    def kept_negatives(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The filtered negative-pair cosines ``S'_n`` of the batch, shape (P',)."""
        negatives = negative_pair_cosines(embeddings, labels)
        return negatives[box_and_whisker_mask(negatives.detach(), self.whisker)]

    def forward(self, embeddings: Tensor, labels: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        """UNPG loss. embeddings: (B, embedding_size); labels: (B,) long; sample_weight: optional (B,)."""
        cosine, cos_y = checked_cosines(embeddings, self.head.weight, labels)
        with full_precision(embeddings):
            target = self.head.target_fn(embeddings)(cos_y)
            negatives = self.kept_negatives(embeddings.to(cosine.dtype), labels)
            return unpg_cross_entropy(cosine, target, labels, negatives, self.head.scale, self.reduction, sample_weight)

    def extra_repr(self) -> str:
        return f"whisker={self.whisker}, reduction={self.reduction}"
