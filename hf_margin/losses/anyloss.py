"""AnyLoss module: ``1 - metric`` of a soft confusion matrix over the batch (binary, or one-vs-rest macro)."""

from __future__ import annotations

from torch import Tensor, nn

from hf_margin._validation import check_choice, check_positive_number
from hf_margin.functional.anyloss import (
    DEFAULT_AMPLIFICATION,
    DEFAULT_EPS,
    INPUT_KINDS,
    METRICS,
    InputKind,
    Metric,
    anyloss,
)


class AnyLoss(nn.Module):
    """AnyLoss: a classification metric (accuracy, F_beta, G-mean, balanced accuracy) as a batch-level loss.

    "AnyLoss: Transforming Classification Metrics into Loss Functions" (Han, Moniz, Chawla, arXiv 2405.14745).
    Probabilities are sharpened by ``A(p) = sigmoid(L (p - 0.5))`` and counted into a soft confusion matrix over
    the batch; the loss is ``1 - metric``. Binary input is (batch,) logits of the positive class; (batch, K)
    logits use our one-vs-rest extension (softmax, per-class metric, macro average over the classes present in
    the batch). A batch holding one class only gives a finite, gradient-free value (see
    :mod:`hf_margin.functional.anyloss`); use batches that contain both classes.

    Args:
        metric: "accuracy", "f_beta", "g_mean" or "balanced_accuracy".
        beta: beta > 0 of F_beta (1 is F1).
        amplification: L > 0 (73 in the paper's notebooks; 2 to 70 is a gentler range).
        inputs: "logits" or "probabilities".
        eps: > 0, keeps ratios and the square root finite (1e-5, as in the authors' extension code).

    Example:
        >>> loss = AnyLoss("f_beta", beta=1.0)
        >>> loss(torch.randn(32), torch.randint(0, 2, (32,)))
    """

    def __init__(
        self,
        metric: Metric | str = "f_beta",
        beta: float = 1.0,
        amplification: float = DEFAULT_AMPLIFICATION,
        inputs: InputKind | str = "logits",
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        check_choice(metric, "metric", METRICS)
        check_choice(inputs, "inputs", INPUT_KINDS)
        check_positive_number(beta, "beta")
        check_positive_number(amplification, "amplification")
        check_positive_number(eps, "eps")
        self.metric = metric
        self.beta = beta
        self.amplification = amplification
        self.inputs = inputs
        self.eps = eps

    def forward(self, scores: Tensor, labels: Tensor) -> Tensor:
        return anyloss(
            scores,
            labels,
            self.metric,
            beta=self.beta,
            amplification=self.amplification,
            inputs=self.inputs,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return f"metric={self.metric!r}, beta={self.beta}, amplification={self.amplification}, inputs={self.inputs!r}"
