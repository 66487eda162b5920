"""Subset Fidelity of ModHiFi: how well a subset of a layer's input components reproduces each output.

Kashyap, Murti, Nayak, Narshana, Bhattacharyya, "ModHiFi: Identifying High Fidelity predictive components for
Model Modification" (NeurIPS 2025, arXiv 2511.19566). An output channel c of a layer is a sum over its inputs i of
components, ``Y_c = sum_i A_ci`` (``A_ci = x_i W_ci`` for a linear layer, ``Phi_i * W_ci`` for a convolution); the
component similarity matrix is ``(Q_c)_ij = E<A_ci, A_cj>`` (Frobenius inner product, expectation over data). With
``C`` a subset of the inputs, ``u = 1 - delta``:

    Subset Fidelity (Def. 3.1)   FS_c(C) = max_delta 1 - E||Y_c - sum_{i in C} delta_i A_ci||^2 / E||Y_c||^2
                                         = 1 - u*^T Q_c u* / 1^T Q_c 1
    compensation (Prop. 3.8)     delta*_C = 1_C + Q_c[C, C]^-1 Q_c[C, Cbar] 1_Cbar,  delta*_i = 0 off C
    singleton score (Eq. 3)      s_ci = FS_c({i}) = (Q_c 1)_i^2 / ((Q_c)_ii 1^T Q_c 1)

The paper adds a ridge ``lambda = 1e-4`` to the diagonal of ``Q_c[C, C]`` before solving (App. D.2); with a ridge
the fidelity returned is that of the ridge solution (at most the exact FS, equal at ``ridge=0``). Our choices where
the paper is silent: an output with ``E||Y_c||^2 = 0`` has fidelity and singleton scores 0 (nothing to reproduce,
nothing selected for it), and so does a component with ``(Q_c)_ii = 0``; with ``ridge=0`` the system is solved by a
pseudo-inverse, so collinear components get the minimum-norm least-squares compensation instead of an error.
Everything is computed in float32 or wider (float64 stays float64).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hf_margin._validation import check_number_in_range

__all__ = ["component_similarity", "optimal_compensation", "singleton_fidelity", "subset_fidelity"]


def _wide(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float64 else x.float()


def _check_float(x: object, name: str, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of shape {what}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor of shape {what}, got dtype {x.dtype}")
    return x


def _check_similarity(similarity: object) -> Tensor:
    what = "(..., inputs, inputs)"
    q = _check_float(similarity, "similarity", what)
    if q.dim() < 2 or q.shape[-1] != q.shape[-2] or q.shape[-1] == 0:
        raise ValueError(f"`similarity` must have shape {what} with inputs >= 1, got shape {tuple(q.shape)}")
    return _wide(q)


def _check_keep(keep: object, similarity: Tensor) -> Tensor:
    inputs = similarity.shape[-1]
    if not isinstance(keep, Tensor) or keep.dtype != torch.bool:
        got = keep.dtype if isinstance(keep, Tensor) else type(keep).__name__
        raise TypeError(f"`keep` must be a bool tensor of shape (..., {inputs}) marking the kept inputs, got {got}")
    try:
        ok = torch.broadcast_shapes(keep.shape, similarity.shape[:-1]) == similarity.shape[:-1]
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"`keep` must have shape (..., {inputs}) broadcasting with `similarity` {tuple(similarity.shape)} "
            f"without the last dimension, got shape {tuple(keep.shape)}"
        )
    return keep.to(similarity.device)


def _safe_ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator / denominator, 0 where the denominator is exactly 0 (NaN still propagates)."""
    zero = denominator == 0
    return torch.where(zero, torch.zeros_like(numerator), numerator / torch.where(zero, 1.0, denominator))


def component_similarity(weight: Tensor, input_moment: Tensor) -> Tensor:
    """The component similarity matrices ``(Q_c)_ij = E<A_ci, A_cj>`` of a linear or convolutional layer.

    ModHiFi (arXiv 2511.19566) §2.1. With the layer's inputs unfolded into patches (a linear layer: one patch of
    size 1 per input and position), ``input_moment = E sum_p patch_p patch_p^T`` (expectation over examples, sum
    over output positions p), and ``(Q_c)_ij = sum_kl W[c, i, k] M[(i, k), (j, l)] W[c, j, l]``. Centre the moment
    (subtract ``P mu mu^T``, the mean patch) for networks with BatchNorm after the layer.

    Args:
        weight: (outputs, inputs, *kernel) the layer's weight (``nn.Linear.weight`` or ``nn.Conv2d.weight``).
        input_moment: (inputs * K, inputs * K), K = prod(kernel) (1 for a linear layer), in the channel-major order
            of ``torch.nn.functional.unfold``.

    Returns:
        (outputs, inputs, inputs) symmetric positive semi-definite matrices, float32 or wider.

    Example:
        >>> component_similarity(torch.eye(2), torch.tensor([[2.0, 1.0], [1.0, 3.0]]))[0]
        tensor([[2., 0.], [0., 0.]])
    """
    w = _check_float(weight, "weight", "(outputs, inputs, *kernel)")
    m = _check_float(input_moment, "input_moment", "(inputs * K, inputs * K)")
    if w.dim() < 2 or w.shape[0] == 0 or w.shape[1] == 0:
        raise ValueError(f"`weight` must have shape (outputs, inputs, *kernel) with inputs >= 1, got {tuple(w.shape)}")
    outputs, inputs = w.shape[:2]
    size = w[0].numel()
    if m.shape != (size, size):
        raise ValueError(
            f"`input_moment` must have shape ({size}, {size}) (inputs x kernel size of `weight` {tuple(w.shape)}), "
            f"got {tuple(m.shape)}"
        )
    dtype = torch.promote_types(_wide(w).dtype, _wide(m).dtype)
    blocks = w.to(dtype).reshape(outputs, inputs, -1)
    kernel = blocks.shape[-1]
    moment = m.to(dtype=dtype, device=w.device).reshape(inputs, kernel, inputs, kernel)
    return torch.einsum("cik,ikjl,cjl->cij", blocks, moment, blocks)


def singleton_fidelity(similarity: Tensor) -> Tensor:
    """The singleton scores ``s_ci = FS_c({i}) = (Q_c 1)_i^2 / ((Q_c)_ii 1^T Q_c 1)`` of ModHiFi's Eq. 3.

    ``s_ci`` is how much of output c the single component i reproduces after its best rescaling
    ``alpha_ci = (Q_c 1)_i / (Q_c)_ii``; it lies in [0, 1]. For a diagonal Q it is ``q_ii / Tr Q`` and the top-k
    singletons are the most faithful k-subset (Thm 3.9).

    Args:
        similarity: (..., inputs, inputs) component similarity matrices (positive semi-definite).

    Returns:
        (..., inputs) scores; 0 where ``(Q_c)_ii = 0`` or ``1^T Q_c 1 = 0``.

    Example:
        >>> singleton_fidelity(torch.tensor([[4.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]]))
        tensor([0.6250, 0.6125, 0.2250])
    """
    q = _check_similarity(similarity)
    row_sums = q.sum(-1)
    total = row_sums.sum(-1, keepdim=True)
    return _safe_ratio(row_sums.square(), q.diagonal(dim1=-2, dim2=-1) * total)


def optimal_compensation(similarity: Tensor, keep: Tensor, ridge: float = 1e-4) -> Tensor:
    """The compensation ``delta*`` that best rebuilds each output from the kept components (ModHiFi Prop. 3.8).

    ``delta*_C = 1_C + (Q_c[C, C] + ridge I)^-1 Q_c[C, Cbar] 1_Cbar`` and 0 off C: the least-squares rescaling of
    the kept components (App. B.3). Multiply input i's weights into output c by ``delta*_ci`` to prune the others.

    Args:
        similarity: (..., inputs, inputs) component similarity matrices.
        keep: (..., inputs) bool mask of the kept inputs C (broadcast over the leading dimensions).
        ridge: added to the diagonal of ``Q_c[C, C]`` before solving (paper: 1e-4); 0 solves exactly
            (pseudo-inverse).

    Returns:
        (..., inputs) the compensation; 1 on C and 0 elsewhere when every input is kept.

    Example:
        >>> q = torch.tensor([[4.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
        >>> optimal_compensation(q, torch.tensor([True, True, False]), ridge=0.0)
        tensor([0.9286, 1.2857, 0.0000])
    """
    q = _check_similarity(similarity)
    mask = _check_keep(keep, q)
    check_number_in_range(ridge, "ridge", 0.0, float("inf"))
    if mask.dim() == 1:  # one subset for every output: solve on the kept block only (faster, same solution)
        index = mask.nonzero().squeeze(1)
        dropped = (~mask).to(q.dtype)
        block = q[..., index[:, None], index] + ridge * torch.eye(len(index), dtype=q.dtype, device=q.device)
        solution = _solve(block, (q[..., index, :] * dropped).sum(-1), ridge)
        delta = q.new_zeros(q.shape[:-1])
        delta[..., index] = 1.0 + solution
        return delta
    kept = torch.broadcast_to(mask, q.shape[:-1]).to(q.dtype)
    dropped = 1.0 - kept
    eye = torch.eye(q.shape[-1], dtype=q.dtype, device=q.device)
    # Q[C, C] + ridge on each output's kept block, the identity on its dropped one: one batched solve.
    system = kept[..., :, None] * q * kept[..., None, :] + eye * (ridge * kept + dropped)[..., None, :]
    return kept * (1.0 + _solve(system, kept * (q @ dropped[..., None]).squeeze(-1), ridge))


def _solve(system: Tensor, target: Tensor, ridge: float) -> Tensor:
    """system^-1 target (batched vectors); the minimum-norm least-squares solution when ridge is 0."""
    if ridge == 0:
        return (torch.linalg.pinv(system) @ target[..., None]).squeeze(-1)
    return torch.linalg.solve(system, target)


def subset_fidelity(similarity: Tensor, keep: Tensor, ridge: float = 1e-4) -> Tensor:
    """Subset Fidelity ``FS_c(C) = 1 - u^T Q_c u / 1^T Q_c 1`` with ``u = 1 - delta*`` (ModHiFi Def. 3.1).

    The share of ``E||Y_c||^2`` that the kept components rebuild after the optimal compensation
    (:func:`optimal_compensation`): 1 when everything is kept, 0 when nothing is, monotone in C (Lemma 3.2).

    Args:
        similarity: (..., inputs, inputs) component similarity matrices.
        keep: (..., inputs) bool mask of the kept inputs C.
        ridge: as in :func:`optimal_compensation` (with a ridge: the fidelity of the ridge solution).

    Returns:
        (...,) the fidelity of each output; 0 for an output with ``1^T Q_c 1 = 0``.

    Example:
        >>> q = torch.tensor([[4.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
        >>> subset_fidelity(q, torch.tensor([True, True, False]), ridge=0.0)
        tensor(0.9143)
    """
    q = _check_similarity(similarity)
    residual = 1.0 - optimal_compensation(q, keep, ridge)
    error = (residual[..., None, :] @ q @ residual[..., :, None]).squeeze(-1).squeeze(-1)
    total = q.sum((-2, -1))
    return _safe_ratio(total - error, total)
