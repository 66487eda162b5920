"""Temperature InfoNCE over labelled pairs, and its hardness-aware relative penalty.

Paper: Wang & Liu, "Understanding the Behaviour of Contrastive Loss" (CVPR 2021, arXiv 2012.09740). For an anchor
a with positive p (similarity ``s_ap``) and negatives N(a), the loss keeps the positive in the denominator:

    ``L_ap = -log(e^{s_ap/tau} / (e^{s_ap/tau} + sum_{n in N(a)} e^{s_an/tau})) = softplus(lse_n(s_an/tau) - s_ap/tau)``

Its gradients are ``dL/ds_ap = -(1/tau) sum_n P_an`` and ``dL/ds_an = (1/tau) P_an`` (P the softmax over positive and
negatives), so the negatives' gradients add up to minus the positive's, and the relative penalty on negative n,
``r(s_an) = |dL/ds_an| / |dL/ds_ap| = e^{s_an/tau} / sum_{k in N(a)} e^{s_ak/tau}``, is a Boltzmann distribution over
the negatives at temperature tau: small tau concentrates it on the hardest negatives. With one positive per anchor
and all other rows as negatives this is NT-Xent (SimCLR), pytorch-metric-learning's `NTXentLoss`. The paper's
hard-negative variant keeps only the top negatives; its K / alpha were not retrieved, so it is not provided.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._validation import check_pair_masks, check_positive_number
from hf_margin.functional._masked import masked_logsumexp


def negative_log_normaliser(similarities: Tensor, neg_mask: Tensor, temperature: float) -> Tensor:
    """Each row's ``log sum_{n in N(a)} e^{s_an/tau}``, shape (B,); ``-inf`` (with zero gradient) for rows without
    negatives."""
    return masked_logsumexp(similarities / temperature, neg_mask)


def info_nce_pair_losses(similarities: Tensor, pos_mask: Tensor, neg_mask: Tensor, temperature: float) -> Tensor:
    """(B, R) loss of every positive pair ``softplus(lse_n(s_an/tau) - s_ap/tau)``; 0 where `pos_mask` is False.

    Args:
        similarities: (B, R) anchor-reference similarities (cosines).
        pos_mask: (B, R) bool, positive pairs.
        neg_mask: (B, R) bool, negative pairs (each anchor's denominator).
        temperature: tau > 0.
    """
    check_positive_number(temperature, "temperature")
    check_pair_masks(similarities, pos_mask=pos_mask, neg_mask=neg_mask)
    lse = negative_log_normaliser(similarities, neg_mask, temperature).unsqueeze(1)
    losses = F.softplus(lse - similarities / temperature)
    return torch.where(pos_mask, losses, torch.zeros_like(losses))


def relative_penalty(similarities: Tensor, neg_mask: Tensor, temperature: float) -> Tensor:
    """Wang & Liu's relative penalty ``r(s_an) = e^{s_an/tau} / sum_{k in N(a)} e^{s_ak/tau}`` on each negative.

    Returns (B, R): a softmax over each row's negatives (rows sum to 1), 0 off the negatives and on rows without any.
    """
    check_positive_number(temperature, "temperature")
    check_pair_masks(similarities, neg_mask=neg_mask)
    lse = negative_log_normaliser(similarities, neg_mask, temperature).unsqueeze(1)
    # Masked before the exponential: off the negatives (and on rows without any, where lse = -inf) the exponent
    # can overflow, and a discarded inf would still turn the gradient into 0 * inf = NaN.
    return torch.exp((similarities / temperature - lse).masked_fill(~neg_mask, float("-inf")))
