"""`GeneralizationMeasuresCallback`: log Jiang et al.'s margin-based generalization measures at every evaluation.

Jiang, Neyshabur, Mobahi, Krishnan, Bengio, "Fantastic Generalization Measures and Where to Find Them"
(arXiv 1912.02178): the 10th-percentile output margin gamma of the training set, 1/gamma^2, spectral / Frobenius /
path norms over gamma^2 (formulas in `hf_margin.diagnostics.generalization`). They are **correlational
diagnostics, not guarantees** (Gastpar et al., "Fantastic Generalization Measures are Nowhere to be Found",
ICLR 2024): watch how they move between runs or checkpoints, do not read them as bounds on test error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from hf_margin._validation import check_positive_int
from hf_margin.callbacks._evaluation_log import EvaluationMeasureCallback
from hf_margin.diagnostics.generalization import generalization_measures, logits_of, weight_matrices

LogitsFn = Callable[[Any, Any], Any]


def default_logits(model: Any, chunk: Any) -> Any:
    """``model(**chunk)`` for a mapping of tensors, else ``model(chunk)``."""
    return model(**chunk) if isinstance(chunk, Mapping) else model(chunk)


def _rows(inputs: Sequence[Any] | Tensor | Mapping[str, Tensor], start: int, stop: int) -> Any:
    if isinstance(inputs, Mapping):
        return {key: value[start:stop] for key, value in inputs.items()}
    return inputs[start:stop]


class GeneralizationMeasuresCallback(EvaluationMeasureCallback):
    """Add ``<prefix>_gm_<measure>`` (margin, inverse_margin, norms over margin, ...) to every evaluation log.

    The measures are computed on a fixed sample of the *training* set (`inputs`, `labels`), as Jiang et al. define
    them; the weights at the start of training are kept as W^0 for the distance-from-initialisation measures, and
    `input_shape` turns on the path-norm (for models that take float inputs). On each evaluation log (the one holding
    ``<prefix>_runtime``) the model runs in eval mode without gradient, `batch_size` rows at a time; the values go
    into the log, what `trainer.evaluate()` returns and ``state.log_history``. To reach TensorBoard / W&B too, add it
    with ``trainer.callback_handler.callbacks.insert(0, callback)``. Correlational diagnostics, not guarantees.

    Args:
        inputs: the fixed training sample: a Tensor, a mapping of tensors (e.g. ``input_ids``, ``attention_mask``)
            or any sliceable sequence that `logits_fn` accepts.
        labels: (m,) integer class labels of the sample.
        logits_fn: ``logits_fn(model, chunk)`` -> (len(chunk), classes) logits, or an output holding ``logits``;
            default `default_logits`.
        input_shape: shape of one input (no batch dim) for the path-norm; None leaves the path-norm out.
        normalize: apply the size normalisation of the re-implementation (see `generalization_measures`).
        num_examples: m for that normalisation (default: the sample size; pass the training-set size).
        batch_size: rows per forward pass.
        metric_key_prefix: the evaluation's prefix ("eval").

    Example:
        >>> callback = GeneralizationMeasuresCallback(train_x[:512], train_y[:512], input_shape=(64,))
        >>> trainer.callback_handler.callbacks.insert(0, callback)
    """

    def __init__(
        self,
        inputs: Sequence[Any] | Tensor | Mapping[str, Tensor],
        labels: Tensor,
        logits_fn: LogitsFn | None = None,
        input_shape: tuple[int, ...] | None = None,
        normalize: bool = False,
        num_examples: int | None = None,
        batch_size: int = 64,
        metric_key_prefix: str = "eval",
    ) -> None:
        rows = len(next(iter(inputs.values()))) if isinstance(inputs, Mapping) and inputs else len(inputs)
        if rows < 1 or not isinstance(labels, Tensor) or tuple(labels.shape) != (rows,):
            got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
            raise ValueError(f"`labels` must be a Tensor of shape ({rows},) (one per input, at least 1), got {got}")
        check_positive_int(batch_size, "batch_size")
        self.inputs, self.labels, self.rows = inputs, labels, rows
        self.logits_fn = default_logits if logits_fn is None else logits_fn
        self.input_shape, self.normalize, self.num_examples = input_shape, normalize, num_examples
        self.batch_size, self.prefix = batch_size, metric_key_prefix
        self.init_weights: dict[str, Tensor] | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is not None and self.init_weights is None:
            self.init_weights = {k: w.detach().clone() for k, w in weight_matrices(model).items()}

    @torch.no_grad()
    def measure(self, model: Any) -> dict[str, float]:
        """The measures of `model` on the sample (eval mode, restored after), keyed ``<prefix>_gm_<measure>``."""
        was_training = getattr(model, "training", False)
        model.eval()
        try:
            chunks = [
                logits_of(self.logits_fn(model, _rows(self.inputs, i, i + self.batch_size)))
                for i in range(0, self.rows, self.batch_size)
            ]
        finally:
            model.train(was_training)
        logits = torch.cat([chunk.detach().float() for chunk in chunks])
        values = generalization_measures(
            model,
            logits,
            self.labels.to(logits.device),
            self.init_weights,
            self.input_shape,
            self.normalize,
            self.num_examples,
        )
        return {f"{self.prefix}_gm_{key}": value for key, value in values.items()}
