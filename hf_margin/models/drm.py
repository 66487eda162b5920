"""`DomainSpecificHeads`: Domain-Specific Risk Minimization's per-domain heads on a shared backbone.

Paper: "Domain-Specific Risk Minimization for Out-of-Distribution Generalization" (DRM; Zhang, Wang, Liang,
Zhang, Yu, Wang, Tao, Xie; arXiv 2208.08661). Equations from the official code (inside `yfzhang114/AdaNPC`); the
paper's full text was not read.

- Training: heads h_1..h_K (one per source domain) and a shared head h_{K+1}; a sample of domain i adds
  l_i = 1/2 [CE(h_i(phi(x)), y) + CE(h_{K+1}(phi(x)), y)], averaged within each domain and then over the domains
  present in the batch (the code draws one minibatch per domain and averages over the K domains).
- Inference: the head with the lowest batch-mean prediction entropy, argmin_j mean_x H(softmax(h_j(phi(x)))).
- Online steering (`steer`): per sample w_j(x) = H_j(x)^-gamma / sum_{j'=1}^{K+1} H_{j'}(x)^-gamma and
  p(x) = sum_{j=1}^{K} w_j(x) softmax(h_j) (the sum leaves out the shared head though the normalisation has it, as
  in the code); gamma < 0 takes each sample's lowest-entropy head. Pseudo-labels y = argmax p, kept where the
  confidence is >= threshold; the code's confidence is max softmax(p) (a softmax of probabilities, which can never
  exceed e / (e + C - 1)): ``confidence="code"`` (default) keeps it, ``confidence="probability"`` uses max p. Loss
  sum_{j=1}^{K+1} CE(h_j, y) on the kept samples, `steps` optimizer steps with the given optimizer (over the heads:
  DRM; over all parameters: DRMFull); the returned prediction is the pre-update p.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hf_margin._precision import at_least_float32
from hf_margin._validation import check_choice, check_class_labels, check_embeddings, check_positive_int


def _entropy(logits: Tensor) -> Tensor:
    log_p = torch.log_softmax(at_least_float32(logits), dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


class DomainSpecificHeads(nn.Module):
    """DRM: a shared backbone, one linear head per training domain plus an all-domain head, entropy head selection.

    Paper: DRM (arXiv 2208.08661). Formula: L = mean_i 1/2 [CE(h_i, y) + CE(h_{K+1}, y)] over domains i; inference
    uses head argmin_j mean_B H(softmax(h_j)).

    Args:
        backbone: the shared featuriser phi (any module mapping inputs to (batch, feature_dim)); None = identity.
        feature_dim: width of phi's output.
        num_labels: classes C.
        num_domains: training domains K (the model has K + 1 heads).

    Example:
        >>> model = DomainSpecificHeads(nn.Sequential(nn.Linear(384, 64), nn.ReLU()), 64, num_labels=2, num_domains=4)
        >>> loss = model(x, labels=y, domains=d)["loss"]; logits = model(x_test)["logits"]
    """

    def __init__(self, backbone: nn.Module | None, feature_dim: int, num_labels: int, num_domains: int) -> None:
        super().__init__()
        for value, name in ((feature_dim, "feature_dim"), (num_labels, "num_labels"), (num_domains, "num_domains")):
            check_positive_int(value, name)
        self.backbone = backbone if backbone is not None else nn.Identity()
        self.feature_dim, self.num_labels, self.num_domains = feature_dim, num_labels, num_domains
        self.heads = nn.ModuleList(nn.Linear(feature_dim, num_labels) for _ in range(num_domains + 1))

    def head_logits(self, inputs: Tensor) -> Tensor:
        """Logits of every head, shape (K + 1, batch, C); the last head is the shared one."""
        features = self.backbone(inputs)
        check_embeddings(features, self.feature_dim, name="backbone(inputs)")
        return torch.stack([head(features) for head in self.heads])

    def forward(self, inputs: Tensor, labels: Tensor | None = None, domains: Tensor | None = None) -> dict[str, Tensor]:
        """``logits`` of the lowest-mean-entropy head, ``selected_head``, ``head_logits``, and ``loss`` when
        `labels` and `domains` (integers in [0, K)) are given."""
        all_logits = self.head_logits(inputs)
        selected = _entropy(all_logits).mean(dim=1).argmin()
        out = {"logits": all_logits[selected], "selected_head": selected, "head_logits": all_logits}
        if labels is None and domains is None:
            return out
        if labels is None or domains is None:
            raise ValueError("`labels` and `domains` must be given together (training needs both), got only one")
        batch = all_logits.shape[1]
        check_class_labels(labels, batch, self.num_labels, "labels")
        check_class_labels(domains, batch, self.num_domains, "domains")
        rows = torch.arange(batch, device=labels.device)
        own = nn.functional.cross_entropy(at_least_float32(all_logits[domains, rows]), labels, reduction="none")
        shared = nn.functional.cross_entropy(at_least_float32(all_logits[-1]), labels, reduction="none")
        per_sample = 0.5 * (own + shared)
        present = domains.unique()
        out["loss"] = torch.stack([per_sample[domains == d].mean() for d in present]).mean()
        return out

    def steer(
        self,
        inputs: Tensor,
        optimizer: torch.optim.Optimizer,
        gamma: float = 1.0,
        threshold: float = 0.75,
        steps: int = 1,
        confidence: str = "code",
    ) -> Tensor:
        """DRM's online steering: entropy-weighted head mixture, then `steps` updates on confident pseudo-labels.

        Args:
            inputs: a test batch.
            optimizer: updates what steering changes (the heads: DRM; every parameter: DRMFull), lr = alpha * lr_train.
            gamma: entropy exponent (0 weights all heads equally; < 0 takes each sample's lowest-entropy head).
            threshold: beta, the confidence a pseudo-label needs (> 1 means no update).
            steps: optimizer steps on the pseudo-labelled samples.
            confidence: "code" (max softmax(p), as the official code) or "probability" (max p).

        Returns:
            p(x), shape (batch, C), from the pass before any update.
        """
        check_positive_int(steps, "steps")
        check_choice(confidence, "confidence", ("code", "probability"))
        prediction = torch.zeros(0)
        for step in range(steps):
            all_logits = self.head_logits(inputs)
            probabilities = torch.softmax(at_least_float32(all_logits), dim=-1)
            entropies = _entropy(all_logits)  # (K + 1, batch)
            if gamma < 0:
                pick = entropies.argmin(dim=0)
                mixture = probabilities[pick, torch.arange(pick.numel(), device=pick.device)]
            else:  # H^-gamma normalised, in log space so zero entropies do not overflow
                weights = torch.softmax(-gamma * entropies.clamp_min(torch.finfo(entropies.dtype).tiny).log(), dim=0)
                mixture = (weights[:-1, :, None] * probabilities[:-1]).sum(0)
            mixture = mixture.detach()
            if step == 0:
                prediction = mixture
            scores = torch.softmax(mixture, dim=-1) if confidence == "code" else mixture
            top, pseudo = scores.max(dim=-1)
            keep = top >= threshold
            if not keep.any():
                break
            loss = sum(
                nn.functional.cross_entropy(at_least_float32(all_logits[j, keep]), pseudo[keep])
                for j in range(len(self.heads))
            )
            optimizer.zero_grad()
            torch.as_tensor(loss).backward()
            optimizer.step()
        return prediction
