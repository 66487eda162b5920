"""Hyperspherical head: normalised softmax with unit-norm class vectors, and novel classes added by imprinting."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hf_margin._validation import check_embeddings, check_finite, check_label_vector
from hf_margin.functional.hyperspherical import hyperspherical_prototypes, unchanged_target
from hf_margin.functional.margin_heads import Reduction
from hf_margin.heads.base import MarginHead


class HypersphericalHead(MarginHead):
    """Class vectors on the unit sphere, no bias, cross-entropy on ``s cos(theta_j)``; new classes by imprinting.

    Paper: Pereira, Joly, Valduriez, Porto, "Hyperspherical embedding for novel class classification",
    arXiv 2102.03243. Embeddings are scaled to norm ``s`` and class vectors kept at unit norm, so the logits are
    ``<s f/||f||, w_j> = s cos(theta_j)`` (no margin: with ``margin=0`` CosFace gives the same loss). A novel class
    is added without gradient steps (`add_classes`): its vector is the normalised mean of its normalised
    embeddings. `from_embeddings` builds a head of novel classes only (the paper's disjoint scenario).

    The class vectors are projected back to unit norm after each optimiser step (the paper's Keras
    ``min_max_norm(1, 1)`` constraint, i.e. projected gradient descent) by `project_`: with `transformers.Trainer`
    add `hf_margin.callbacks.HypersphericalProjectionCallback`; in a plain loop call ``head.project_()`` after
    ``optimizer.step()``. The loss reads each vector's direction only, so its value is the same without the
    projection; the projection changes the optimisation (the size of each step relative to the vector).
    There is no bias parameter (the paper's bias is constrained to 0).

    Args:
        embedding_size: dimension of the embeddings.
        num_classes: number of classes the head starts with.
        scale: the sphere's radius ``s`` (the paper's package: 10).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> head = HypersphericalHead(64, 30)
        >>> loss = head(embeddings, labels); loss.backward(); optimizer.step(); head.project_()
        >>> head.add_classes(novel_embeddings, torch.tensor([30, 30, 31]))  # now 32 classes
    """

    def __init__(
        self, embedding_size: int, num_classes: int, scale: float = 10.0, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(embedding_size, num_classes, scale, reduction)

    def reset_parameters(self, init: ModuleType = nn.init) -> None:
        """Initialise the class vectors N(0, 1/D): norms about 1 (exactly 1 from the first projection on), so the
        first steps are of the same relative size as later ones. ``init`` as in `MarginHead`."""
        init.normal_(self.weight, std=self.embedding_size**-0.5)

    def target_fn(self, embeddings: Tensor) -> Callable[[Tensor], Tensor]:
        return unchanged_target

    @torch.no_grad()
    def project_(self) -> None:
        """Project every class vector to unit norm in place (after an optimiser step; no host sync)."""
        self.weight.copy_(F.normalize(self.weight, dim=1))

    @torch.no_grad()
    def add_classes(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Add the classes of `labels` without gradient steps: each gets the normalised mean of its normalised
        embeddings as class vector (the paper's joint scenario). Returns the new class vectors, (K, D).

        The labels must name new classes, exactly ``num_classes .. num_classes + K - 1`` (each at least once), so
        the existing classes keep their indices, vectors and logits; a label of an existing class is an error
        (nothing is overwritten). `weight` becomes a new parameter: an optimizer built before must be rebuilt to
        train it.

        Args:
            embeddings: (N, embedding_size) finite embeddings of the new classes' samples (any norm).
            labels: (N,) integer class indices of the new classes.

        Raises:
            ValueError: empty or non-finite embeddings, wrong shapes, labels of existing classes or with gaps, or a
                class whose normalised embeddings cancel out (no direction). The head is then unchanged.
        """
        new = imprint(embeddings, labels, self.embedding_size, self.num_classes).to(self.weight)
        self.weight = nn.Parameter(torch.cat([self.weight.detach(), new]), requires_grad=self.weight.requires_grad)
        self.num_classes += len(new)
        return new

    @classmethod
    def from_embeddings(
        cls, embeddings: Tensor, labels: Tensor, scale: float = 10.0, reduction: Reduction = "mean"
    ) -> HypersphericalHead:
        """A head whose classes are only imprinted ones (the paper's disjoint scenario), on `embeddings`' device.

        Args:
            embeddings: (N, D) finite embeddings (any norm).
            labels: (N,) class indices ``0 .. K-1``, each at least once.
            scale: the sphere's radius ``s``.
            reduction: ``"mean"``, ``"sum"`` or ``"none"``.

        Example:
            >>> novel = HypersphericalHead.from_embeddings(backbone(x_shots), y_shots)  # y_shots in 0..K-1
        """
        check_embeddings(embeddings)
        prototypes = imprint(embeddings, labels, embeddings.shape[1], 0)
        head = cls(embeddings.shape[1], len(prototypes), scale, reduction).to(embeddings.device)
        with torch.no_grad():
            head.weight.copy_(prototypes)
        return head


def imprint(embeddings: Tensor, labels: Tensor, embedding_size: int, first: int) -> Tensor:
    """The imprinted vectors of classes ``first .. first + K - 1`` (`hyperspherical_prototypes`), after the
    checks of `HypersphericalHead.add_classes` (a host sync: imprinting is not a training step)."""
    check_embeddings(embeddings, embedding_size)
    check_finite(embeddings, "embeddings")
    check_label_vector(labels, embeddings.shape[0], kind="class indices")
    classes, prototypes = hyperspherical_prototypes(embeddings, labels.to(embeddings.device))
    existing = classes[(classes >= 0) & (classes < first)]
    if existing.numel():
        raise ValueError(
            f"`labels` name existing classes {existing.tolist()}: only new classes {first}, {first + 1}, ... can be "
            f"added (the head has {first}); to replace a class, build a new head"
        )
    if not torch.equal(classes, torch.arange(first, first + len(classes), device=classes.device)):
        raise ValueError(
            f"`labels` must be the new class indices {first}..{first + len(classes) - 1}, none missing, got classes "
            f"{classes.tolist()}"
        )
    degenerate = prototypes.norm(dim=1) < 0.5  # a zero mean direction normalises to (about) zero, not to 1
    if degenerate.any():
        raise ValueError(
            f"the normalised `embeddings` of classes {classes[degenerate].tolist()} cancel out (zero mean direction): "
            "they define no class vector"
        )
    return prototypes
