"""Proto-Triplet and ICNN loss modules for few-shot episodes; math and the official code's quirks in
`hf_margin.functional.few_shot`.

Paper: Mendez-Ruiz et al., "SuSana Distancia is all you need: Enforcing class separability in metric learning via
two novel distance-based loss functions for few-shot image classification", arXiv 2305.09062.
"""

from __future__ import annotations

from torch import Tensor, nn

from hf_margin._reduction import REDUCTIONS
from hf_margin._validation import (
    check_choice,
    check_integers,
    check_number_in_range,
    check_positive_int,
    check_positive_number,
)
from hf_margin.functional.few_shot import icnn_loss, proto_triplet_loss


class ProtoTripletLoss(nn.Module):
    """Proto-Triplet: each query against its own prototype and the nearest other one, with a margin.

    ``L = mean_q max(0, d(q, c_{y_q}) - min_{k != y_q} d(q, c_k) + margin)``, ``c_k`` the support class means and
    ``d = sqrt(||q - c||^2 + eps)``.

    Args:
        margin: 0.5 (the official code).
        eps: 1e-6, under the square root.
        reduction: "mean", "sum" or "none".

    Example:
        >>> loss = ProtoTripletLoss()(encoder(support_x), support_y, encoder(query_x), query_y)
    """

    def __init__(self, margin: float = 0.5, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__()
        check_number_in_range(margin, "margin", 0.0, float("inf"))
        check_positive_number(eps, "eps")
        check_choice(reduction, "reduction", REDUCTIONS)
        self.margin, self.eps, self.reduction = float(margin), float(eps), reduction

    def forward(self, support: Tensor, support_labels: Tensor, queries: Tensor, query_labels: Tensor) -> Tensor:
        return proto_triplet_loss(support, support_labels, queries, query_labels, self.margin, self.eps, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, eps={self.eps}, reduction={self.reduction}"


class ICNNLoss(nn.Module):
    """ICNN loss ``-log(score)``, the score rating same-class closeness and different-class distance among
    each point's k nearest neighbours in a reference set (see `hf_margin.functional.few_shot.icnn_score`).

    The paper's variants: ``ICNNLoss()(support, support_y)`` ("suppicnn"); ``ICNNLoss()(queries, query_y,
    support, support_y)`` ("queryicnn"; with the prototypes as reference when ``--query_protos``); and
    ``ICNNLoss(ipc=shots + queries)(cat(support, queries), cat(labels))`` ("fullicnn").

    Args:
        k: neighbours scored (4).
        ipc: neighbours looked at for the nearest different-class one (default k + 1).
        drop_nearest: with an external reference, drop each point's nearest reference point (official code).
        clamp_k: ``k = |T| - 2`` and gamma = 1 when ``k + 2 >= |T|`` (official code); False raises instead.

    Example:
        >>> loss = ProtoTripletLoss()(s, s_y, q, q_y) + ICNNLoss(ipc=5 + 15)(torch.cat([s, q]), torch.cat([s_y, q_y]))
    """

    def __init__(self, k: int = 4, ipc: int | None = None, drop_nearest: bool = True, clamp_k: bool = True) -> None:
        super().__init__()
        check_integers(k=k, **({} if ipc is None else {"ipc": ipc}))
        check_positive_int(k, "k")
        if ipc is not None:
            check_positive_int(ipc, "ipc")
        self.k, self.ipc, self.drop_nearest, self.clamp_k = k, ipc, bool(drop_nearest), bool(clamp_k)

    def forward(
        self, points: Tensor, labels: Tensor, reference: Tensor | None = None, reference_labels: Tensor | None = None
    ) -> Tensor:
        return icnn_loss(points, labels, reference, reference_labels, self.k, self.ipc, self.drop_nearest, self.clamp_k)

    def extra_repr(self) -> str:
        return f"k={self.k}, ipc={self.ipc}, drop_nearest={self.drop_nearest}, clamp_k={self.clamp_k}"
