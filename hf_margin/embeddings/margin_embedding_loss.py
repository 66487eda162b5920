"""MarginEmbeddingLoss: sentence-transformers InfoNCE with focal reweighting, hard-negative mixing,
false-negative filtering (self-guided or with a guide model) and soft-label distillation.

KaLM-Embedding-V2 (arXiv 2506.20923) and LG-ANNA-Embedding (arXiv 2506.07438); the math and every choice
where the papers are silent: :mod:`hf_margin.functional.contrastive`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from hf_margin._extras import require
from hf_margin.functional.contrastive import FilterStrategy, InfoNCEOptions, Mixing, Similarity, margin_info_nce

require("sentence_transformers", "st", "hf_margin.embeddings")

from sentence_transformers.base.losses.merged_forward import embed_columns  # noqa: E402
from sentence_transformers.util import all_gather, all_gather_with_grad, batch_to_device, get_rank  # noqa: E402

logger = logging.getLogger(__name__)

STATISTICS = ("filtered_share", "mean_focal_weight", "similarity_gap")

_CITATION = """
@misc{zhao2025kalmembeddingv2,
      title={KaLM-Embedding-V2: Superior Training Techniques and Data Inspire A Versatile Embedding Model},
      author={Xinping Zhao and others},
      year={2025},
      eprint={2506.20923},
      archivePrefix={arXiv},
      primaryClass={cs.CL},
}
@misc{lgai2025lganna,
      title={LG-ANNA-Embedding technical report},
      author={LG AI Research},
      year={2025},
      eprint={2506.07438},
      archivePrefix={arXiv},
      primaryClass={cs.CL},
}
"""


class MarginEmbeddingLoss(nn.Module):
    """InfoNCE over (anchor, positive, negative_1, ..., negative_M) columns with switchable margin parts.

    KaLM-Embedding-V2 (arXiv 2506.20923): focal weight ``(1 - p)^gamma`` and online hard-negative mixing;
    LG-ANNA-Embedding (arXiv 2506.07438): drop negatives scoring ``>= s(q, p) - |s(q, p)| m`` (relative) or
    ``>= s(q, p) - m`` (absolute), and distil soft labels (teacher scores in the dataset's label column,
    shape (batch, 1 + M)). With every part off it is MultipleNegativesRankingLoss.

    Args:
        model: the SentenceTransformer being trained.
        scale: inverse temperature (20 = temperature 0.05, sentence-transformers' default).
        similarity: "cosine" or "dot".
        symmetric: add the doc-to-query direction (as MNRL's per-direction ("query_to_doc", "doc_to_query")).
        focal_gamma, focal_detach: focal exponent (0 = off) and whether its weight is a constant.
        focal_normalize: divide by the batch's summed focal weight instead of the batch size (weights of mean 1,
            so the focal weight does not shrink the step size; off: the paper's mean).
        filter_strategy, filter_margin: None, "relative" or "absolute" false-negative filtering and its margin.
        guide: a guide SentenceTransformer for the filter scores; None filters with the model's own scores.
        mixing, num_mixed, mix_lambda, mix_temperature, mix_gradient: online hard-negative mixing.
        distill_weight, teacher_temperature: soft-label KL term (0 = off).
        gather_across_devices: gather embeddings over processes (in-batch negatives from every process).
        seed: seed of the mixing draws (None: torch's global generator).

    Example:
        >>> loss = MarginEmbeddingLoss(model, focal_gamma=2.0, filter_strategy="relative", mixing="pairwise",
        ...                            num_mixed=4)
        >>> trainer = SentenceTransformerTrainer(model=model, train_dataset=triplets, loss=loss)
    """

    def __init__(
        self,
        model: Any,
        scale: float = 20.0,
        similarity: Similarity = "cosine",
        symmetric: bool = False,
        focal_gamma: float = 0.0,
        focal_detach: bool = False,
        focal_normalize: bool = False,
        filter_strategy: FilterStrategy | None = None,
        filter_margin: float = 0.05,
        guide: Any | None = None,
        mixing: Mixing | None = None,
        num_mixed: int = 1,
        mix_lambda: float | None = None,
        mix_temperature: float = 0.05,
        mix_gradient: bool = False,
        distill_weight: float = 0.0,
        teacher_temperature: float = 0.05,
        gather_across_devices: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.options = InfoNCEOptions(
            scale=scale,
            similarity=similarity,
            symmetric=symmetric,
            focal_gamma=focal_gamma,
            focal_detach=focal_detach,
            focal_normalize=focal_normalize,
            filter_strategy=filter_strategy,
            filter_margin=filter_margin,
            mixing=mixing,
            num_mixed=num_mixed,
            mix_lambda=mix_lambda,
            mix_temperature=mix_temperature,
            mix_gradient=mix_gradient,
            distill_weight=distill_weight,
            teacher_temperature=teacher_temperature,
        )
        if guide is not None and filter_strategy is None:
            raise ValueError("`guide` is only used by the false-negative filter: also set `filter_strategy`")
        self.guide = guide
        self.must_retokenize = guide is not None and _different_tokenizers(model, guide)
        self.gather_across_devices = gather_across_devices
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._resumed_state: dict[str, Any] | None = None
        # Kept as tensors so that training never waits for the device; read only when logged. A batch with a
        # non-finite loss or statistic is left out on the device (no sync), so one bad batch cannot hide the rest.
        self._sums: dict[str, Tensor | float] = dict.fromkeys(STATISTICS, 0.0)
        self._finite_steps: Tensor | float = 0.0
        self._steps = 0

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        features = list(sentence_features)
        embeddings = embed_columns(self.model, features)
        return self.compute_loss_from_embeddings(embeddings, labels, self.guide_embeddings(features))

    def guide_embeddings(self, features: list[dict[str, Tensor]]) -> list[Tensor] | None:
        """The guide model's embeddings of the same columns (None without a guide)."""
        if self.guide is None:
            return None
        with torch.no_grad():
            if self.must_retokenize:
                texts = [self.model.tokenizer.batch_decode(f["input_ids"], skip_special_tokens=True) for f in features]
                features = [batch_to_device(self.guide.preprocess(t), self.guide.device) for t in texts]
            return [self.guide(f)["sentence_embedding"] for f in features]

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None, guide: list[Tensor] | None = None
    ) -> Tensor:
        """The loss from per-column embeddings [anchor, positive, negatives...] (and the guide's, if any)."""
        if len(embeddings) < 2:
            raise ValueError(
                f"MarginEmbeddingLoss needs (anchor, positive[, negative_1, ...]) columns, got {len(embeddings)}"
            )
        batch_size = embeddings[0].shape[0]
        offset = 0
        if self.gather_across_devices:
            embeddings = [all_gather_with_grad(e) for e in embeddings]
            guide = None if guide is None else [all_gather(g) for g in guide]
            offset = get_rank() * batch_size
        output = margin_info_nce(
            embeddings[0],
            embeddings[1:],
            self.options,
            offset=offset,
            batch_size=batch_size,
            guide_queries=None if guide is None else guide[0],
            guide_documents=None if guide is None else guide[1:],
            teacher_scores=labels if self.options.distill_weight > 0 else None,
            generator=self._mixing_generator(embeddings[0].device),
        )
        if torch.is_grad_enabled():
            values = [getattr(output, name).detach() for name in STATISTICS]
            finite = torch.isfinite(torch.stack([output.loss.detach(), *values])).all()
            for name, value in zip(STATISTICS, values, strict=True):
                self._sums[name] = self._sums[name] + torch.where(finite, value, torch.zeros_like(value))
            self._finite_steps = self._finite_steps + finite.float()
            self._steps += 1
        return output.loss

    @property
    def owns_generator(self) -> bool:
        """Whether the mixing draws come from the loss's own generator (pairwise mixing with a `seed`)."""
        return self.seed is not None and self.options.mixing == "pairwise"

    def _mixing_generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None or not self.owns_generator:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device).manual_seed(self.seed)
            resumed, self._resumed_state = self._resumed_state, None
            if resumed is not None and resumed["device"] == device.type:
                self._generator.set_state(resumed["state"])
            elif resumed is not None:
                logger.warning(
                    "the saved mixing generator state is for %s, the loss now runs on %s: the draws restart from "
                    "`seed`",
                    resumed["device"],
                    device.type,
                )
        return self._generator

    def generator_state(self) -> dict[str, Any] | None:
        """The state of the mixing draws' own generator, ``{"device": type, "state": ByteTensor}`` (None when the
        loss does not own one, or before its first draw unless a state is pending from `set_generator_state`).

        A Trainer checkpoint does not hold it (the loss is not part of the model); save it with the checkpoints
        (:func:`hf_margin.callbacks.checkpoint_loss_generator`) so that a resumed training draws what the
        uninterrupted one would."""
        if self._resumed_state is not None:
            return self._resumed_state
        if self._generator is None:
            return None
        return {"device": self._generator.device.type, "state": self._generator.get_state()}

    def set_generator_state(self, state: dict[str, Any]) -> None:
        """Continue the mixing draws from `state` (a :meth:`generator_state`) from the next draw on; a state saved on
        another device type is not applied (a warning, and the draws restart from `seed`)."""
        if not (
            isinstance(state, dict)
            and isinstance(state.get("device"), str)
            and isinstance(state.get("state"), Tensor)
            and state["state"].dtype == torch.uint8
        ):
            raise ValueError(
                "`state` must be a generator_state(): {'device': str, 'state': uint8 tensor}, got "
                f"{type(state).__name__} {sorted(state) if isinstance(state, dict) else ''}".rstrip()
            )
        self._generator, self._resumed_state = None, state

    def pop_statistics(self) -> dict[str, float]:
        """Means of the logged statistics over the training forward passes since the last call, then reset.

        Batches with a non-finite loss are left out; NaN if every batch since the last call was non-finite.
        """
        if self._steps == 0:
            return {}
        count = float(self._finite_steps)
        means = {name: float(total) / count if count else math.nan for name, total in self._sums.items()}
        self._sums, self._finite_steps, self._steps = dict.fromkeys(STATISTICS, 0.0), 0.0, 0
        return means

    def get_config_dict(self) -> dict[str, Any]:
        config = dataclasses.asdict(self.options)
        config["guide"] = None if self.guide is None else "SentenceTransformer (guide)"
        config["gather_across_devices"] = self.gather_across_devices
        config["seed"] = self.seed
        return config

    @property
    def temperature(self) -> float:
        return 1.0 / self.options.scale

    @property
    def citation(self) -> str:
        return _CITATION


def _different_tokenizers(model: Any, guide: Any) -> bool:
    model_tokenizer, guide_tokenizer = getattr(model, "tokenizer", None), getattr(guide, "tokenizer", None)
    if model_tokenizer is None or guide_tokenizer is None:
        raise ValueError("`model` and `guide` must both have a `tokenizer` to filter with a guide model")
    same_vocab = model_tokenizer.get_vocab() == guide_tokenizer.get_vocab()
    return not same_vocab or guide.max_seq_length < model.max_seq_length
