"""InfoNCE for embedding models with margin-based false-negative filtering, focal reweighting, online
hard-negative mixing and soft-label distillation, each switchable.

KaLM-Embedding-V2 (Zhao et al., arXiv 2506.20923): focal weight ``w_i = (1 - p_i)^gamma`` on the positive's
softmax probability, ``L = mean_i(-w_i log p_i)``; synthetic negatives mixed in embedding space from a query's
own hard negatives (pairwise ``lambda n_j + (1 - lambda) n_k`` with ``lambda ~ Beta(2, 2)``, or a
similarity-weighted mix of the whole list), L2-normalised and added to that query's denominator.
LG-ANNA-Embedding (arXiv 2506.07438) / NV-Retriever: a negative is kept only if its score is below the
positive's minus a margin, ``s(q, n) < s(q, p) - |s(q, p)| m`` (relative, m = 0.05 is "95% of the positive")
or ``s(q, n) < s(q, p) - m`` (absolute); scores come from the model itself (self-guided) or a guide model.

Choices where the papers are silent (all options):
- the focal weight is differentiated like the original focal loss (``focal_detach=False``) unless detached;
- ``focal_normalize`` divides by the batch's summed focal weight (detached) instead of the batch size: the weights
  then average 1, so gamma only shifts the gradient between queries instead of also shrinking the step (at gamma 2
  the mean weight of a fine-tuned MiniLM is 0.10-0.16, an eighth of the step; off by default, as the paper);
- pairs (j, k) are drawn uniformly among the kept hard negatives, the mixed vectors are detached unless
  ``mix_gradient``; the list mix weights are ``softmax(s(q, n_m) / mix_temperature)`` (one synthetic per query);
- synthetic negatives go through the same false-negative filter as real ones (a normalised mix can score
  above both of its sources);
- the relative rule uses ``|s(q, p)|`` as sentence-transformers' ``mine_hard_negatives`` and GISTEmbedLoss do:
  the literal ``0.95 s(q, p)`` would keep negatives that score above a negative-scoring positive;
- soft labels: ``KL(softmax(t / teacher_temperature) || softmax(scale s))`` over each query's positive and own
  hard negatives (KaLM-V2.5's distillation divergence; LG-ANNA does not say which loss it uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_margin._precision import at_least_float32, full_precision
from hf_margin._validation import (
    check_choice,
    check_embeddings,
    check_label_vector,
    check_number_in_range,
    check_positive_int,
    check_positive_number,
)
from hf_margin.functional._distillation import softmax_kl_per_sample

Similarity = Literal["cosine", "dot"]
FilterStrategy = Literal["relative", "absolute"]
Mixing = Literal["pairwise", "similarity"]


@dataclass(frozen=True)
class InfoNCEOptions:
    """The switches of :func:`margin_info_nce` (defaults: plain InfoNCE, as MultipleNegativesRankingLoss).

    Args:
        scale: inverse temperature applied to the similarities (20 = temperature 0.05).
        similarity: "cosine" or "dot".
        symmetric: also score each positive against every query (doc-to-query), averaged with query-to-doc.
        focal_gamma: focal exponent gamma >= 0; 0 turns the focal weight off.
        focal_detach: treat the focal weight as a constant in the backward pass.
        focal_normalize: average the per-query terms with the focal weights (``sum w_i l_i / sum w_i``, the
            denominator detached) instead of over the batch, so the weights average 1 and the step size is InfoNCE's.
        filter_strategy: None, "relative" or "absolute" false-negative filtering.
        filter_margin: m of the filter rule (relative: 0.05 keeps negatives below 95% of the positive).
        mixing: None, "pairwise" (Beta(2, 2) mixes of two hard negatives) or "similarity" (list mix).
        num_mixed: synthetic negatives per query (pairwise; the list mix makes exactly one).
        mix_lambda: a fixed lambda for pairwise mixing instead of Beta(2, 2) draws (1 copies a negative).
        mix_temperature: softmax temperature of the list-mix weights.
        mix_gradient: let gradients flow into the hard negatives through the synthetic ones.
        distill_weight: weight of the soft-label KL term (needs teacher scores; 0 turns it off).
        teacher_temperature: temperature applied to the teacher scores.
    """

    scale: float = 20.0
    similarity: Similarity = "cosine"
    symmetric: bool = False
    focal_gamma: float = 0.0
    focal_detach: bool = False
    focal_normalize: bool = False
    filter_strategy: FilterStrategy | None = None
    filter_margin: float = 0.05
    mixing: Mixing | None = None
    num_mixed: int = 1
    mix_lambda: float | None = None
    mix_temperature: float = 0.05
    mix_gradient: bool = False
    distill_weight: float = 0.0
    teacher_temperature: float = 0.05

    def __post_init__(self) -> None:
        check_positive_number(self.scale, "scale")
        check_choice(self.similarity, "similarity", ("cosine", "dot"))
        check_number_in_range(self.focal_gamma, "focal_gamma", 0.0, float("inf"))
        check_choice(self.filter_strategy, "filter_strategy", (None, "relative", "absolute"))  # type: ignore[arg-type]
        high = 1.0 if self.filter_strategy == "relative" else float("inf")
        check_number_in_range(self.filter_margin, "filter_margin", 0.0, high)
        check_choice(self.mixing, "mixing", (None, "pairwise", "similarity"))  # type: ignore[arg-type]
        check_positive_int(self.num_mixed, "num_mixed")
        if self.mixing == "similarity" and self.num_mixed != 1:
            raise ValueError(
                f"`num_mixed` must be 1 with mixing='similarity' (one mix per query), got {self.num_mixed}"
            )
        if self.mix_lambda is not None:
            check_number_in_range(self.mix_lambda, "mix_lambda", 0.0, 1.0)
        check_positive_number(self.mix_temperature, "mix_temperature")
        check_number_in_range(self.distill_weight, "distill_weight", 0.0, float("inf"))
        check_positive_number(self.teacher_temperature, "teacher_temperature")


@dataclass
class InfoNCEOutput:
    """The loss and per-batch statistics (detached) of :func:`margin_info_nce`.

    Attributes:
        loss: the scalar loss.
        filtered_share: share of the real negative candidates dropped as likely false negatives.
        mean_focal_weight: mean focal weight over the queries (1 with the focal weight off).
        similarity_gap: mean over queries of the positive's similarity minus the mean similarity of the kept
            negatives (real ones, in-batch and hard).
    """

    loss: Tensor
    filtered_share: Tensor
    mean_focal_weight: Tensor
    similarity_gap: Tensor


def similarity_matrix(a: Tensor, b: Tensor, similarity: Similarity = "cosine") -> Tensor:
    """(n, d) x (m, d) -> (n, m) cosine or dot similarities."""
    if similarity == "cosine":
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    return a @ b.T


def upper_triangle(matrix: Tensor) -> Tensor:
    """The entries (i < j) of a square (n, n) matrix in row-major order: one value per unordered pair of a set."""
    mask = torch.ones(matrix.shape[0], matrix.shape[1], dtype=torch.bool, device=matrix.device).triu_(1)
    return matrix[mask]


def labelled_pair_cosines(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Cosines (P,) of every unordered pair (i < j) of the rows, row-major, and whether its two labels agree (P,).

    One (n, n) similarity matrix, computed in float32 or wider with autocast off; differentiable. P = n (n - 1) / 2.

    Args:
        embeddings: (n, D).
        labels: (n,) integer labels.

    Example:
        >>> cosines, same = labelled_pair_cosines(embeddings, labels)
        >>> impostor_scores = cosines[~same]
    """
    check_embeddings(embeddings)
    labels = check_label_vector(labels, embeddings.shape[0]).to(embeddings.device)
    with full_precision(embeddings):
        x = at_least_float32(embeddings)
        cosines = upper_triangle(similarity_matrix(x, x))
    return cosines, upper_triangle(labels.unsqueeze(1) == labels.unsqueeze(0))


def rowwise_similarity(a: Tensor, b: Tensor, similarity: Similarity = "cosine") -> Tensor:
    """(n, d) x (n, k, d) -> (n, k): each row of `a` against its own k vectors of `b`."""
    if similarity == "cosine":
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    return torch.einsum("nd,nkd->nk", a, b)


def focal_weight(log_prob: Tensor, gamma: float, detach: bool = False) -> Tensor:
    """KaLM's focal weight ``(1 - p)^gamma`` from ``log p``; exactly 1 for gamma = 0.

    ``1 - p`` is computed as ``-expm1(log p)`` (accurate near p = 1) and floored at the smallest normal float so
    that the gradient stays finite for gamma < 1.
    """
    if gamma == 0:
        return torch.ones_like(log_prob)
    source = log_prob.detach() if detach else log_prob
    return (-torch.expm1(source)).clamp_min(torch.finfo(source.dtype).tiny).pow(gamma)


def false_negative_mask(positive_scores: Tensor, scores: Tensor, strategy: FilterStrategy, margin: float) -> Tensor:
    """True where a candidate is a likely false negative: ``score >= s_p - |s_p| m`` (relative) or ``s_p - m``.

    Args:
        positive_scores: the positive's score, broadcastable against `scores` (e.g. (B, 1)).
        scores: candidate scores (B, N).
        strategy: "relative" or "absolute".
        margin: m >= 0.
    """
    slack = margin * positive_scores.abs() if strategy == "relative" else margin
    return scores >= positive_scores - slack


def _beta22(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    # Beta(2, 2) = X / (X + Y) with X, Y ~ Gamma(2, 1), each the sum of two unit exponentials: -log(u1 u2).
    uniform = 1.0 - torch.rand((4, *shape), generator=generator, device=device)
    gammas = -uniform.log().view(2, 2, *shape).sum(1)
    total = (gammas[0] + gammas[1]).clamp_min(torch.finfo(gammas.dtype).tiny)
    return gammas[0] / total


def pairwise_mixing_weights(
    keep: Tensor, num_mixed: int, lam: float | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """(B, M) kept-negative mask -> (B, num_mixed, M) convex weights, each mixing two kept negatives.

    j and k are drawn uniformly among the kept negatives, k != j when at least two are kept (else k = j);
    lambda is drawn from Beta(2, 2) unless fixed. Rows with no kept negative get arbitrary weights: mask their
    synthetic negatives out (see :func:`margin_info_nce`).
    """
    rows, width = keep.shape
    choices = torch.where(keep.any(1, keepdim=True), keep.float(), torch.ones_like(keep, dtype=torch.float))
    first = torch.multinomial(choices, num_mixed, replacement=True, generator=generator)
    others = choices.unsqueeze(1).repeat(1, num_mixed, 1).scatter_(2, first.unsqueeze(-1), 0.0)
    others = torch.where(others.sum(-1, keepdim=True) > 0, others, F.one_hot(first, width).float())
    second = torch.multinomial(others.view(-1, width), 1, generator=generator).view(rows, num_mixed)
    if lam is None:
        lambdas = _beta22((rows, num_mixed), generator, keep.device)
    else:
        lambdas = torch.full((rows, num_mixed), float(lam), device=keep.device)
    weights = torch.zeros(rows, num_mixed, width, device=keep.device)
    weights.scatter_add_(2, first.unsqueeze(-1), lambdas.unsqueeze(-1))
    return weights.scatter_add_(2, second.unsqueeze(-1), (1.0 - lambdas).unsqueeze(-1))


def similarity_mixing_weights(scores: Tensor, keep: Tensor, temperature: float) -> Tensor:
    """(B, M) hard-negative scores and kept mask -> (B, 1, M) weights ``softmax(s / temperature)`` over the kept."""
    logits = (scores / temperature).masked_fill(~keep, float("-inf"))
    logits = torch.where(keep.any(1, keepdim=True), logits, torch.zeros_like(logits))
    return logits.softmax(-1).unsqueeze(1)


def mix_negatives(weights: Tensor, negatives: Tensor) -> Tensor:
    """(B, K, M) weights x (B, M, d) negatives -> (B, K, d) synthetic negatives.

    Each mix is L2-normalised, then rescaled to the same convex combination of its sources' norms, so that with
    unit-norm embeddings it is unit-norm and a weight of 1 on one negative reproduces it exactly.
    """
    weights = weights.to(negatives.dtype)
    mixed = F.normalize(weights @ negatives, dim=-1)
    return mixed * (weights @ negatives.norm(dim=-1, keepdim=True))


def soft_label_kl(student_logits: Tensor, teacher_scores: Tensor, teacher_temperature: float) -> Tensor:
    """Batch-mean ``KL(softmax(teacher / T) || softmax(student))`` over each row's candidates."""
    return softmax_kl_per_sample(student_logits, teacher_scores / teacher_temperature, 1.0).mean()


def _check_inputs(queries: Tensor, documents: Sequence[Tensor], offset: int, batch_size: int) -> None:
    if not isinstance(queries, Tensor) or queries.dim() != 2:
        raise ValueError(f"`queries` must be a (batch, dim) tensor, got {getattr(queries, 'shape', queries)}")
    # InfoNCE over no rows is 0 / 0: an empty batch is an error, not a NaN loss.
    check_embeddings(queries, name="queries")
    check_positive_int(batch_size, "batch_size")
    if len(documents) < 1:
        raise ValueError("`documents` needs at least the positives column")
    for index, column in enumerate(documents):
        if not isinstance(column, Tensor) or tuple(column.shape) != tuple(queries.shape):
            raise ValueError(
                f"`documents[{index}]` must have the queries' shape {tuple(queries.shape)}, "
                f"got {tuple(getattr(column, 'shape', ()))}"
            )
    if not 0 <= offset <= queries.shape[0] - batch_size:
        raise ValueError(f"`offset` + `batch_size` must fit in {queries.shape[0]} rows, got {offset} + {batch_size}")


def _filtered(scores: Tensor, guide: Tensor, positive_columns: Tensor, options: InfoNCEOptions) -> Tensor:
    """Drop mask (B, N) of the likely false negatives; never the positive's own column."""
    if options.filter_strategy is None:
        return torch.zeros_like(scores, dtype=torch.bool)
    rows = torch.arange(scores.shape[0], device=scores.device)
    guide_positive = guide[rows, positive_columns].unsqueeze(1)
    drop = false_negative_mask(guide_positive, guide, options.filter_strategy, options.filter_margin)
    drop[rows, positive_columns] = False
    return drop


def _focal_nll(logits: Tensor, positive_columns: Tensor, options: InfoNCEOptions) -> tuple[Tensor, Tensor]:
    rows = torch.arange(logits.shape[0], device=logits.device)
    log_p = logits[rows, positive_columns] - torch.logsumexp(logits, dim=1)
    weight = focal_weight(log_p, options.focal_gamma, options.focal_detach)
    mean_weight = weight.detach().mean()
    if options.focal_normalize:  # weights of mean 1: the focal term redistributes the step instead of shrinking it
        # every weight 0 (each positive certain) leaves 0 / 0: the clamp makes it 0, the loss's value there
        return -(weight * log_p).mean() / mean_weight.clamp_min(torch.finfo(mean_weight.dtype).tiny), mean_weight
    return -(weight * log_p).mean(), mean_weight


def _mixed_negative_logits(
    queries: Tensor,
    hard: Tensor,
    scores: Tensor,
    guide: Tensor,
    drop: Tensor,
    rows: Tensor,
    width: int,
    options: InfoNCEOptions,
    guide_hard: tuple[Tensor, Tensor] | None,
    generator: torch.Generator | None,
) -> Tensor:
    """(B, K) logits of the synthetic negatives mixed from each query's own kept hard negatives (B, M, d)."""
    own = rows.unsqueeze(1) + width * torch.arange(1, hard.shape[1] + 1, device=rows.device)
    keep_own = ~drop.gather(1, own)
    if options.mixing == "pairwise":
        weights = pairwise_mixing_weights(keep_own, options.num_mixed, options.mix_lambda, generator)
    else:
        weights = similarity_mixing_weights(scores.detach().gather(1, own), keep_own, options.mix_temperature)
    mixed = mix_negatives(weights, hard if options.mix_gradient else hard.detach())
    mixed_scores = rowwise_similarity(queries, mixed, options.similarity)
    mixed_drop = ~keep_own.any(1, keepdim=True).expand_as(mixed_scores)
    if options.filter_strategy is not None:
        if guide_hard is None:
            mixed_guide = mixed_scores.detach()
        else:
            mixed_guide = rowwise_similarity(guide_hard[0], mix_negatives(weights, guide_hard[1]), options.similarity)
        positive_guide = guide.gather(1, rows.unsqueeze(1))
        mixed_drop |= false_negative_mask(positive_guide, mixed_guide, options.filter_strategy, options.filter_margin)
    return (options.scale * mixed_scores).masked_fill(mixed_drop, float("-inf"))


def margin_info_nce(
    queries: Tensor,
    documents: Sequence[Tensor],
    options: InfoNCEOptions = InfoNCEOptions(),
    *,
    offset: int = 0,
    batch_size: int | None = None,
    guide_queries: Tensor | None = None,
    guide_documents: Sequence[Tensor] | None = None,
    teacher_scores: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> InfoNCEOutput:
    """InfoNCE over in-batch and hard negatives with the switches of `options`.

    Args:
        queries: (W, d) query embeddings (W = the batch, or the batch gathered over all processes).
        documents: [positives, hard negatives 1, ..., hard negatives M], each (W, d); every query's candidates
            are all positives and all hard negatives of the batch, as MultipleNegativesRankingLoss.
        options: the method's switches (:class:`InfoNCEOptions`).
        offset, batch_size: the rows of this process (default: all W rows from 0).
        guide_queries, guide_documents: a guide model's embeddings of the same texts for the filter (default:
            the model's own detached scores, "self-guided").
        teacher_scores: (batch_size, 1 + M) teacher scores of each query's positive and hard negatives.
        generator: random generator for pairwise mixing.

    An empty batch raises a ValueError (InfoNCE over no rows is undefined); non-finite embeddings give a
    non-finite loss.
    """
    with full_precision(queries):  # similarities in float32 even under bf16/fp16 autocast
        batch_size = queries.shape[0] if batch_size is None else batch_size
        _check_inputs(queries, documents, offset, batch_size)
        num_hard = len(documents) - 1
        if options.mixing is not None and num_hard < (2 if options.mixing == "pairwise" else 1):
            raise ValueError(
                f"mixing={options.mixing!r} needs at least {2 if options.mixing == 'pairwise' else 1} hard-negative "
                f"column(s) after (anchor, positive); got {num_hard}"
            )
        if options.distill_weight > 0:
            expected = (batch_size, 1 + num_hard)
            if teacher_scores is None or tuple(teacher_scores.shape) != expected or num_hard == 0:
                raise ValueError(
                    f"distill_weight > 0 needs teacher scores of shape (batch, 1 + hard negatives) = {expected} "
                    f"with at least one hard negative, got "
                    f"{None if teacher_scores is None else tuple(teacher_scores.shape)}"
                )
        similarity = options.similarity
        width = queries.shape[0]
        rows = torch.arange(offset, offset + batch_size, device=queries.device)
        local = torch.arange(batch_size, device=queries.device)
        all_queries = at_least_float32(queries)
        columns = [at_least_float32(column) for column in documents]
        candidates = torch.cat(columns)
        scores = similarity_matrix(all_queries[rows], candidates, similarity)
        if guide_queries is not None and guide_documents is not None:
            guide_local = at_least_float32(guide_queries)[rows]
            guide = similarity_matrix(
                guide_local, torch.cat([at_least_float32(g) for g in guide_documents]), similarity
            )
        else:
            guide = scores.detach()
        drop = _filtered(scores, guide, rows, options)
        logits = (options.scale * scores).masked_fill(drop, float("-inf"))

        if options.mixing is not None:
            hard = torch.stack(columns[1:], dim=1)[rows]
            guide_hard = None
            if guide_queries is not None and guide_documents is not None:
                guide_hard = (guide_local, torch.stack([at_least_float32(g) for g in guide_documents[1:]], dim=1)[rows])
            mixed_logits = _mixed_negative_logits(
                all_queries[rows], hard, scores, guide, drop, rows, width, options, guide_hard, generator
            )
            logits = torch.cat([logits, mixed_logits], dim=1)

        loss, mean_weight = _focal_nll(logits, rows, options)
        if options.symmetric:
            doc_scores = similarity_matrix(columns[0][rows], all_queries, similarity)
            if guide_queries is not None and guide_documents is not None:
                doc_guide = similarity_matrix(
                    at_least_float32(guide_documents[0])[rows], at_least_float32(guide_queries), similarity
                )
            else:
                doc_guide = doc_scores.detach()
            doc_drop = _filtered(doc_scores, doc_guide, rows, options)
            doc_logits = (options.scale * doc_scores).masked_fill(doc_drop, float("-inf"))
            doc_loss, doc_weight = _focal_nll(doc_logits, rows, options)
            loss, mean_weight = (loss + doc_loss) / 2, (mean_weight + doc_weight) / 2
        if options.distill_weight > 0 and teacher_scores is not None:
            own_columns = rows.unsqueeze(1) + width * torch.arange(num_hard + 1, device=queries.device)
            student = options.scale * scores.gather(1, own_columns)
            loss = loss + options.distill_weight * soft_label_kl(student, teacher_scores, options.teacher_temperature)

        with torch.no_grad():
            negatives = torch.ones_like(drop)
            negatives[local, rows] = False
            kept = negatives & ~drop
            kept_mean = (scores * kept).sum(1) / kept.sum(1).clamp_min(1)
            gap = (scores[local, rows] - kept_mean).mean()
            share = (drop & negatives).sum() / negatives.sum().clamp_min(1)  # no boolean indexing: no sync
        return InfoNCEOutput(loss, share, mean_weight, gap)
