"""`DualHeadModel`: Dual-Head KD's auxiliary classifier added to any model whose main head is an `nn.Linear`.

Yang et al., "Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an Auxiliary Head" (arXiv
2411.08937). The student keeps its main head (trained with cross-entropy, the only one used at inference); an
auxiliary head on the same features learns the teacher's logits with BinaryKL-Norm (`DualHeadKDLoss`). The
features are what the main head receives: a forward hook on it passes its input to the auxiliary head, so any
``*ForSequenceClassification`` / ``*ForImageClassification`` (or a plain module) works unchanged.

Auxiliary heads (official code): ``"linear"`` (``--linear``) or ``"mlp"`` (``--nonlinear``: Linear(d, 200) ->
Dropout(0.1) -> BatchNorm1d -> ReLU -> Linear(200, C); BatchNorm needs training batches of 2 or more).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from transformers.utils import ModelOutput

from hf_margin._validation import check_choice, check_positive_int

HEAD_NAMES = ("classifier", "score", "fc", "head", "out_proj")


@dataclass
class DualHeadOutput(ModelOutput):
    """Output of a wrapped model that returns a bare logits tensor: the main and (in training) auxiliary logits."""

    logits: torch.FloatTensor | None = None
    aux_logits: torch.FloatTensor | None = None


def find_classifier(model: nn.Module, head_name: str | None = None) -> tuple[str, nn.Linear]:
    """The main classification head: the `nn.Linear` named `head_name`, or the last `nn.Linear` whose attribute
    name is one of classifier / score / fc / head / out_proj (and, with a ``config.num_labels``, has that many
    outputs)."""
    modules = dict(model.named_modules())
    if head_name is not None:
        if not isinstance(modules.get(head_name), nn.Linear):
            linears = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
            raise ValueError(
                f"`head_name` must name an nn.Linear of the model, got {head_name!r}; its linear layers "
                f"are {linears[-5:]}"
            )
        return head_name, modules[head_name]
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    found = [
        (n, m)
        for n, m in modules.items()
        if isinstance(m, nn.Linear)
        and n.rpartition(".")[2] in HEAD_NAMES
        and (num_labels is None or m.out_features == num_labels)
    ]
    if not found:
        raise ValueError(f"no classification head found (an nn.Linear named one of {HEAD_NAMES}); pass `head_name`")
    return found[-1]


def auxiliary_head(kind: str, in_features: int, num_classes: int, hidden: int = 200) -> nn.Module:
    """DHKD's auxiliary head: ``"linear"`` or ``"mlp"`` (Linear -> Dropout(0.1) -> BatchNorm1d -> ReLU -> Linear)."""
    check_choice(kind, "aux_head", ("linear", "mlp"))
    if kind == "linear":
        return nn.Linear(in_features, num_classes)
    check_positive_int(hidden, "mlp_hidden")
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.Dropout(0.1),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


class _ForwardWithWrappedSignature:
    """`DualHeadModel.forward`, bound with the wrapped model's signature so that `Trainer` keeps the dataset
    columns the wrapped model takes (it drops those not in ``inspect.signature(model.forward)``)."""

    def __get__(self, instance: DualHeadModel | None, owner: type) -> Any:
        if instance is None:
            return DualHeadModel.dual_forward
        bound: Any = functools.partial(DualHeadModel.dual_forward, instance)
        bound.__signature__ = inspect.signature(instance.model.forward)
        return bound


class DualHeadModel(nn.Module):
    """A model plus DHKD's auxiliary head on its main head's input features.

    In training mode the output gains ``aux_logits`` (the output's own ``logits`` stay the main head's); in eval
    mode the auxiliary head does not run (unless `aux_in_eval`) and the output is exactly the wrapped model's.

    Args:
        model: a classifier whose head is an `nn.Linear` (found by name, see `find_classifier`).
        aux_head: ``"linear"`` or ``"mlp"`` (the official ``--nonlinear`` head, hidden size `mlp_hidden`).
        head_name: the head's module name, if it cannot be found automatically.
        mlp_hidden: hidden width of the ``"mlp"`` head (200 in the official code).
        aux_in_eval: also return ``aux_logits`` in eval mode (to evaluate the auxiliary head).

    Example:
        >>> student = DualHeadModel(AutoModelForImageClassification.from_config(config), aux_head="mlp")
        >>> out = student(pixel_values=x)  # out.logits, out.aux_logits
        >>> DualHeadKDLoss()(out.logits, out.aux_logits, teacher_logits, labels).backward()
        >>> student.drop_auxiliary_head().save_pretrained("student")  # the plain model, main head only
    """

    forward = _ForwardWithWrappedSignature()

    def __init__(
        self,
        model: nn.Module,
        aux_head: str = "linear",
        head_name: str | None = None,
        mlp_hidden: int = 200,
        aux_in_eval: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.head_name, head = find_classifier(model, head_name)
        self.aux_in_eval = aux_in_eval
        self.aux_head = auxiliary_head(aux_head, head.in_features, head.out_features, mlp_hidden).to(head.weight)
        self.config = getattr(model, "config", None)
        self._aux_logits: Tensor | None = None
        self._hook = head.register_forward_hook(self._run_auxiliary_head)

    def _run_auxiliary_head(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if self.training or self.aux_in_eval:
            self._aux_logits = self.aux_head(inputs[0])

    def dual_forward(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped model's forward; in training (or with `aux_in_eval`) its output also has ``aux_logits``."""
        self._aux_logits = None
        outputs = self.model(*args, **kwargs)
        aux, self._aux_logits = self._aux_logits, None
        if aux is None:
            if self.training or self.aux_in_eval:
                raise RuntimeError(f"the main head {self.head_name!r} did not run during the forward pass")
            return outputs
        if isinstance(outputs, Tensor):
            return DualHeadOutput(logits=outputs, aux_logits=aux)
        if not isinstance(outputs, dict):
            raise TypeError(
                f"the wrapped model must return a tensor or a dict/ModelOutput, got {type(outputs).__name__}"
            )
        outputs["aux_logits"] = aux
        return outputs

    def drop_auxiliary_head(self) -> nn.Module:
        """Remove the auxiliary head and return the plain wrapped model (to save, export or serve)."""
        self._hook.remove()
        return self.model
