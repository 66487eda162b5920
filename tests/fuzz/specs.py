"""How to build valid inputs, and which arguments are invalid, for every public head, loss, functional and metric.

One `Spec` per entry point of `hf_margin.heads`, `hf_margin.losses`, `hf_margin.functional` and `hf_margin.metrics`
(their `__all__`; `NOT_FUZZED` names the few exports that are not tensor operations, with the reason). A spec says:

- `make(hp)`: the callable under test, built with the hyperparameters `hp` overriding its defaults (a module is
  built by its constructor, a function is bound with `functools.partial`);
- `inputs(draw)`: valid keyword inputs for a batch of `draw.n` rows in `draw.dtype` on `draw.device`, values
  scaled by `draw.scale` (extreme but finite when the scale is large);
- `bad_params`: (argument, value) pairs that must be rejected with a ValueError/TypeError naming the argument;
- `labels`: the inputs that are integer labels, one per row (float and wrongly sized labels are derived from it);
  with `class_labels`, they index the ``C`` classes (an out-of-range label is derived too). A bad value may also
  be a function of the valid inputs (e.g. an out-of-range example index);
- `any_shape`: the float inputs may have any shape (no wrong-rank input is derived);
- `nan_propagates`: False where the output does not depend arithmetically on the float inputs' values (margins
  drawn at random or reassigned by rank), so a NaN input has nothing to propagate to;
- `min_rows`: batches with fewer rows may be rejected with a clear error instead of computed.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from transformers import EvalPrediction

from hf_margin import heads, losses, metrics

C = 3  # classes
D = 4  # embedding size
M = 4  # ensemble members
NAN = float("nan")
INF = float("inf")


@dataclass(frozen=True)
class Draw:
    """One drawn input configuration: rows, dtype, device, value scale, seed and (metrics) numpy inputs."""

    n: int
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    scale: float = 1.0
    seed: int = 0
    numpy: bool = False

    @functools.cached_property
    def gen(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def _out(self, x: Tensor) -> Tensor:
        return x.to(device=self.device, dtype=self.dtype)

    def floats(self, *shape: int) -> Tensor:
        """Normal values times the scale (float64 draw, cast: extreme values stay finite in the target dtype)."""
        x = torch.randn(shape, generator=self.gen, dtype=torch.float64) * self.scale
        return self._out(x.clamp(-_max(self.dtype), _max(self.dtype)))

    def positive(self, *shape: int) -> Tensor:
        return self._out(torch.rand(shape, generator=self.gen, dtype=torch.float64) * self.scale + 1e-3)

    def unit_interval(self, *shape: int) -> Tensor:
        return self._out(torch.rand(shape, generator=self.gen, dtype=torch.float64))

    def cosines(self, *shape: int) -> Tensor:
        """Cosines in [-1, 1]; with a large scale, many sit exactly at +-1 (the edge cases of margin heads)."""
        x = torch.randn(shape, generator=self.gen, dtype=torch.float64) * self.scale
        return self._out(x.clamp(-1.0, 1.0))

    def labels(self, n: int | None = None, classes: int = C) -> Tensor:
        n = self.n if n is None else n
        order = torch.randperm(n, generator=self.gen)
        return (torch.arange(n) % classes)[order].to(self.device)

    def binary(self, n: int | None = None) -> Tensor:
        return self.labels(n, classes=2)

    def multi_hot(self, n: int | None = None) -> Tensor:
        n = self.n if n is None else n
        hot = torch.rand((n, C), generator=self.gen) < 0.5
        hot[torch.arange(n), torch.arange(n) % C] = True  # every row has a positive
        return hot.long().to(self.device)

    def similarities(self, labels: Tensor) -> Tensor:
        """A symmetric (n, n) cosine matrix with a unit diagonal, as from normalised embeddings."""
        e = torch.nn.functional.normalize(torch.randn((len(labels), D), generator=self.gen, dtype=torch.float64), dim=1)
        return self._out(e @ e.T)


def _max(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).max) / 4 if dtype.is_floating_point else float("inf")


def masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """(positive, negative) pair masks of a label vector, without the diagonal."""
    same = labels[:, None] == labels[None]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


@dataclass(frozen=True)
class Spec:
    """How to fuzz one public entry point (see the module docstring)."""

    name: str
    kind: str  # "head", "loss", "functional" or "metric"
    make: Callable[[dict[str, Any]], Callable[..., Any]]
    inputs: Callable[[Draw], dict[str, Any]]
    bad_params: tuple[tuple[str, Any], ...] = ()
    labels: tuple[str, ...] = ()
    class_labels: bool = True
    any_shape: bool = False
    min_rows: int = 0
    differentiable: bool = True
    nan_propagates: bool = True
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
    notes: str = field(default="", compare=False)


def bad(*names: str, reduction: bool = False, extra: tuple[tuple[str, Any], ...] = ()) -> tuple[tuple[str, Any], ...]:
    """Wrongly typed (a string) and non-finite values for each numeric hyperparameter, plus `extra`."""
    cases: list[tuple[str, Any]] = []
    for name in names:
        cases += [(name, "0.5"), (name, NAN)]
    if reduction:
        cases.append(("reduction", "avg"))
    return (*cases, *extra)


def resolve(path: str) -> Any:
    """`hf_margin.<path>`, looked up when a spec is built (an import error fails that entry point only)."""
    package, _, name = path.rpartition(".")
    return getattr(importlib.import_module(f"hf_margin.{package}"), name)


def bind(path: str, **defaults: Any) -> Callable[[dict[str, Any]], Callable[..., Any]]:
    """A function with its hyperparameters (defaults, overridden by the drawn ones) bound."""
    return lambda hp: functools.partial(resolve(path), **{**defaults, **hp})


def module(path: str, *args: Any, **defaults: Any) -> Callable[[dict[str, Any]], nn.Module]:
    """A module class built with its hyperparameters (defaults, overridden by the drawn ones)."""
    return lambda hp: resolve(path)(*args, **{**defaults, **hp})


# ---- input builders shared by several entry points ------------------------------------------------------------


def emb_labels(d: Draw) -> dict[str, Any]:
    return {"embeddings": d.floats(d.n, D), "labels": d.labels()}


def logits_labels(d: Draw) -> dict[str, Any]:
    return {"logits": d.floats(d.n, C), "labels": d.labels()}


def scores_binary(d: Draw) -> dict[str, Any]:
    return {"scores": d.floats(d.n), "labels": d.binary()}


def cos_y(d: Draw) -> dict[str, Any]:
    return {"cos_y": d.cosines(d.n)}


def pair_inputs(d: Draw) -> dict[str, Any]:
    labels = d.labels()
    pos, neg = masks(labels)
    return {"similarities": d.similarities(labels), "pos_mask": pos, "neg_mask": neg}


def emb_weight_labels(d: Draw) -> dict[str, Any]:
    return {"embeddings": d.floats(d.n, D), "weight": d.floats(C, D), "labels": d.labels()}


def cosine_target_labels(d: Draw) -> dict[str, Any]:
    return {"cosine": d.cosines(d.n, C), "target": d.cosines(d.n), "labels": d.labels()}


def student_teacher(d: Draw) -> dict[str, Any]:
    return {"student_logits": d.floats(d.n, C), "teacher_logits": d.floats(d.n, C)}


def ensemble_target(d: Draw) -> dict[str, Any]:
    return {"ensemble": d.floats(d.n, M), "target": d.floats(d.n)}


def landmarks(names: tuple[str, ...]) -> Callable[[Draw], dict[str, Any]]:
    return lambda d: {name: d.floats(d.n, 5, 2) for name in names}


def few_shot(d: Draw) -> dict[str, Any]:
    return {
        "support": d.floats(max(d.n, C), D),
        "support_labels": d.labels(max(d.n, C)),
        "queries": d.floats(d.n, D),
        "query_labels": d.labels(),
    }


def points_labels(d: Draw) -> dict[str, Any]:
    return {"points": d.floats(d.n, D), "labels": d.labels()}


def sim_labels(d: Draw) -> dict[str, Any]:
    labels = d.labels()
    return {"similarities": d.similarities(labels), "labels": labels}


def metric_array(d: Draw, x: Tensor) -> Any:
    """Metrics take numpy arrays as well as tensors: the draw says which."""
    return x.cpu().numpy() if d.numpy else x


class _Linear(nn.Module):
    """A tiny classifier for the attack metrics."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(D, C)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.float())


def _attack_inputs(d: Draw) -> dict[str, Any]:
    torch.manual_seed(d.seed)
    return {"model": _Linear().to(d.device), "inputs": d.unit_interval(d.n, D), "labels": d.labels()}


def _ignite(d: Draw) -> dict[str, Any]:
    x, w = d.floats(d.n, D), d.floats(D, 1).requires_grad_()
    return {"mean_prediction": lambda: (x @ w).mean() if len(x) else (w * 0).sum(), "params": [w]}


def _robust(d: Draw) -> dict[str, Any]:
    w = d.floats(D, C) / max(d.scale, 1.0)  # a bounded classifier: the points carry the scale
    return {
        "loss_fn": lambda z, y: torch.nn.functional.cross_entropy((z @ w).float(), y, reduction="none"),
        "inputs": d.floats(d.n, D),
        "labels": d.labels(),
    }


def _surrogate(d: Draw) -> dict[str, Any]:
    x, w = d.floats(max(d.n, 1), D), d.floats(D, 1).requires_grad_()
    return {"mean_prediction": (x @ w).mean(), "params": [w]}


def _aligned(d: Draw) -> dict[str, Any]:
    w = d.floats(D, C).requires_grad_()
    x, labels = d.floats(max(d.n, 1), D), d.labels(max(d.n, 1))
    logits = x @ w
    ce = torch.nn.functional.cross_entropy(logits.float(), labels)
    kd = logits.float().pow(2).mean()
    return {"ce_loss": ce, "kd_loss": kd, "parameters": [w]}


def _grads(d: Draw) -> dict[str, Any]:
    return {"ce_grads": [d.floats(D, C), None], "kd_grads": [d.floats(D, C), None]}


# ---- the table -----------------------------------------------------------------------------------------------

_HEAD_ARGS = (D, C)


def _psd(d: Draw, *batch: int) -> Tensor:
    """Positive semi-definite (..., D, D) matrices (ModHiFi's component similarities), built in float64."""
    a = torch.randn((*batch, D, D + 2), generator=d.gen, dtype=torch.float64) * d.scale
    return d._out((a @ a.transpose(-1, -2)).clamp(-_max(d.dtype), _max(d.dtype)))


def _keep(d: Draw, *batch: int) -> Tensor:
    keep = torch.rand((*batch, D), generator=d.gen) < 0.5
    keep[..., 0] = True
    return keep.to(d.device)


_NO_FLOAT16 = (torch.float32, torch.float64, torch.bfloat16)
_M2FNET_NOTE = (
    "float16 left out: the covariance term's gradient grows with the cube of the embeddings' scale and overflows a "
    "float16 input gradient at scale 1e3 (the loss itself computes in float32; under autocast use bf16)"
)
_SUBSET_FIDELITY_NOTE = "float16 left out: Q is a second moment (statistics are accumulated in float32 or wider)"
_LABELS = ("labels",)

SPECS: tuple[Spec, ...] = (
    # heads
    Spec(
        "heads.ArcFaceHead",
        "head",
        module("heads.ArcFaceHead", *_HEAD_ARGS),
        emb_labels,
        bad("margin", "scale", reduction=True, extra=(("margin", 30.0), ("scale", -1.0), ("boundary", "nope"))),
        _LABELS,
    ),
    Spec(
        "heads.CosFaceHead",
        "head",
        module("heads.CosFaceHead", *_HEAD_ARGS),
        emb_labels,
        bad("margin", "scale", reduction=True, extra=(("scale", 0.0),)),
        _LABELS,
    ),
    Spec(
        "heads.CombinedMarginHead",
        "head",
        module("heads.CombinedMarginHead", *_HEAD_ARGS),
        emb_labels,
        bad("m1", "m2", "m3", "scale", reduction=True),
        _LABELS,
    ),
    Spec(
        "heads.ElasticArcFaceHead",
        "head",
        module("heads.ElasticArcFaceHead", *_HEAD_ARGS),
        emb_labels,
        bad("margin", "std", "scale", reduction=True, extra=(("std", -0.1),)),
        _LABELS,
    ),
    Spec(
        "heads.ElasticCosFaceHead",
        "head",
        module("heads.ElasticCosFaceHead", *_HEAD_ARGS),
        emb_labels,
        bad("margin", "std", "scale", reduction=True, extra=(("std", -0.1),)),
        _LABELS,
    ),
    Spec(
        "heads.AdaFaceHead",
        "head",
        module("heads.AdaFaceHead", *_HEAD_ARGS),
        emb_labels,
        bad("margin", "h", "scale", "t_alpha", "eps", reduction=True, extra=(("t_alpha", 2.0),)),
        _LABELS,
    ),
    Spec(
        "heads.HypersphericalHead",
        "head",
        module("heads.HypersphericalHead", *_HEAD_ARGS),
        emb_labels,
        bad("scale", reduction=True, extra=(("scale", 0.0),)),
        _LABELS,
    ),
    Spec(
        "heads.SoftmaxHead", "head", module("heads.SoftmaxHead", *_HEAD_ARGS), emb_labels, bad(reduction=True), _LABELS
    ),
    Spec(
        "heads.PartialFCHead",
        "head",
        module("heads.PartialFCHead", "arcface", *_HEAD_ARGS, sample_rate=0.5),
        emb_labels,
        bad("sample_rate", reduction=True, extra=(("sample_rate", 0.0), ("margin_head", "nope"))),
        _LABELS,
    ),
    Spec(
        "heads.build_head",
        "head",
        module("heads.build_head", "cosface", *_HEAD_ARGS),
        emb_labels,
        bad("margin"),
        _LABELS,
    ),
    # losses
    Spec(
        "losses.LDAMLoss",
        "loss",
        module("losses.LDAMLoss", [50, 10, 2]),
        logits_labels,
        bad("max_m", "scale", extra=(("class_counts", [5, 0, 1]), ("class_counts", [5, -1, 1]))),
        _LABELS,
    ),
    Spec(
        "losses.MultiLabelLDAMLoss",
        "loss",
        module("losses.MultiLabelLDAMLoss", [50, 10, 2]),
        lambda d: {"logits": d.floats(d.n, C), "targets": d.multi_hot()},
        bad("c", extra=(("class_counts", [5, 0, 1]),)),
    ),
    Spec(
        "losses.AUCMarginLoss",
        "loss",
        module("losses.AUCMarginLoss", score_type="logits"),
        scores_binary,
        bad("margin", "imratio", extra=(("imratio", 1.5), ("version", "v9"), ("score_type", "nope"))),
        min_rows=2,
    ),
    Spec(
        "losses.AnyLoss",
        "loss",
        module("losses.AnyLoss"),
        scores_binary,
        bad("beta", "amplification", extra=(("metric", "nope"), ("inputs", "nope"))),
    ),
    Spec(
        "losses.CompSumLoss", "loss", module("losses.CompSumLoss"), logits_labels, bad("tau", reduction=True), _LABELS
    ),
    Spec(
        "losses.ZLoss",
        "loss",
        module("losses.ZLoss", a=1.0, b=2.0),
        logits_labels,
        bad("a", "b", "eps", reduction=True),
        _LABELS,
    ),
    Spec(
        "losses.LogitZLoss",
        "loss",
        module("losses.LogitZLoss"),
        lambda d: {"logits": d.floats(d.n, C)},
        bad("coefficient", reduction=True),
        any_shape=True,
    ),
    Spec(
        "losses.LDRKLLoss",
        "loss",
        module("losses.LDRKLLoss"),
        logits_labels,
        bad("lam", "margin", extra=(("lam", 0.0), ("logit_normalization", "nope"))),
        _LABELS,
    ),
    Spec(
        "losses.ALDRKLLoss",
        "loss",
        module("losses.ALDRKLLoss", 16),
        lambda d: {**logits_labels(d), "indices": torch.randperm(16, generator=d.gen)[: d.n].to(d.device)},
        bad(
            "lam0",
            "alpha",
            "margin",
            extra=(
                ("alpha", 0.5),
                ("num_examples", 0),
                ("indices", lambda inputs: torch.full_like(inputs["indices"], 16)),
            ),
        ),
        _LABELS,
    ),
    Spec(
        "losses.FocalLoss",
        "loss",
        module("losses.FocalLoss"),
        logits_labels,
        bad("gamma", extra=(("gamma", -1.0), ("beta", 1.5))),
        _LABELS,
    ),
    Spec(
        "losses.MultiSimilarityLoss",
        "loss",
        module("losses.MultiSimilarityLoss"),
        emb_labels,
        bad("alpha", "beta", "base", reduction=True),
        _LABELS,
    ),
    Spec(
        "losses.AdaptiveMarginTripletLoss",
        "loss",
        module("losses.AdaptiveMarginTripletLoss"),
        emb_labels,
        bad("amt_weight", "cov_weight", "var_weight", "eps", extra=(("eps", 0.0), ("hinge", "no"))),
        _LABELS,
        dtypes=_NO_FLOAT16,
        notes=_M2FNET_NOTE,
    ),
    Spec(
        "functional.adaptive_margin_triplet_loss",
        "functional",
        bind("functional.adaptive_margin_triplet_loss"),
        lambda d: {"anchor": d.floats(d.n, D), "positive": d.floats(d.n, D), "negative": d.floats(d.n, D)},
        bad("amt_weight", "eps", extra=(("var_weight", -1.0), ("detach_margin", "no"))),
        dtypes=_NO_FLOAT16,
        notes=_M2FNET_NOTE,
    ),
    Spec(
        "losses.MultiSimilarityMiner",
        "loss",
        module("losses.MultiSimilarityMiner"),
        emb_labels,
        bad("epsilon"),
        _LABELS,
        differentiable=False,
    ),
    Spec(
        "losses.TemperatureInfoNCELoss",
        "loss",
        module("losses.TemperatureInfoNCELoss"),
        emb_labels,
        bad("temperature", reduction=True, extra=(("temperature", 0.0),)),
        _LABELS,
    ),
    Spec(
        "losses.ThresholdConsistentMarginLoss",
        "loss",
        module("losses.ThresholdConsistentMarginLoss"),
        emb_labels,
        bad("lambda_plus", "lambda_minus", "margin_plus", "margin_minus"),
        _LABELS,
    ),
    Spec(
        "losses.UNPGLoss",
        "loss",
        lambda hp: losses.UNPGLoss(heads.ArcFaceHead(D, C), **hp),
        emb_labels,
        bad("whisker", reduction=True),
        _LABELS,
    ),
    Spec(
        "losses.ProtoTripletLoss",
        "loss",
        module("losses.ProtoTripletLoss"),
        few_shot,
        bad("margin", "eps", reduction=True),
        ("support_labels", "query_labels"),
    ),
    Spec(
        "losses.ICNNLoss",
        "loss",
        module("losses.ICNNLoss"),
        points_labels,
        bad(extra=(("k", 0), ("k", "4"), ("ipc", 0))),
        _LABELS,
        min_rows=2 * C,
    ),
    Spec(
        "losses.DualHeadKDLoss",
        "loss",
        module("losses.DualHeadKDLoss"),
        lambda d: {
            "logits": d.floats(d.n, C),
            "aux_logits": d.floats(d.n, C),
            "teacher_logits": d.floats(d.n, C),
            "labels": d.labels(),
        },
        bad("gamma", "alpha", "temperature", extra=(("temperature", 0.0),)),
        _LABELS,
    ),
    Spec(
        "losses.LandmarkKDLoss",
        "loss",
        module("losses.LandmarkKDLoss"),
        landmarks(("predictions", "ground_truth", "tough_teacher", "tolerant_teacher")),
        bad("main_weight", "band", extra=(("band", -0.5),)),
        any_shape=True,
    ),
    Spec(
        "losses.AFCRPSLoss",
        "loss",
        module("losses.AFCRPSLoss"),
        ensemble_target,
        bad("alpha", reduction=True, extra=(("alpha", 1.5), ("method", "nope"))),
        min_rows=0,
    ),
    Spec(
        "losses.AggregateResponseLoss",
        "loss",
        module("losses.AggregateResponseLoss", "interpolating"),
        lambda d: {
            "predictions": d.floats(d.n),
            "bag_ids": torch.arange(d.n, device=d.device) // 2,
            "bag_responses": d.floats((d.n + 1) // 2),
        },
        bad("rho", reduction=True, extra=(("rho", 1.5), ("level", "nope"))),
    ),
    # functional
    Spec(
        "functional.component_similarity",
        "functional",
        bind("functional.component_similarity"),
        lambda d: {"weight": d.floats(d.n, D), "input_moment": _psd(d)},
        any_shape=True,  # weight (outputs, inputs, *kernel): an extra trailing dimension is a 1-wide kernel
        dtypes=_NO_FLOAT16,
        notes=_SUBSET_FIDELITY_NOTE,
    ),
    Spec(
        "functional.singleton_fidelity",
        "functional",
        bind("functional.singleton_fidelity"),
        lambda d: {"similarity": _psd(d, d.n)},
        dtypes=_NO_FLOAT16,
        notes=_SUBSET_FIDELITY_NOTE,
    ),
    Spec(
        "functional.optimal_compensation",
        "functional",
        bind("functional.optimal_compensation"),
        lambda d: {"similarity": _psd(d, d.n), "keep": _keep(d)},
        bad("ridge", extra=(("ridge", -1.0),)),
        dtypes=_NO_FLOAT16,
        notes=_SUBSET_FIDELITY_NOTE,
    ),
    Spec(
        "functional.subset_fidelity",
        "functional",
        bind("functional.subset_fidelity"),
        lambda d: {"similarity": _psd(d, d.n), "keep": _keep(d, d.n)},
        bad("ridge", extra=(("ridge", -1.0),)),
        dtypes=_NO_FLOAT16,
        notes=_SUBSET_FIDELITY_NOTE,
    ),
    Spec(
        "functional.arcface_loss",
        "functional",
        bind("functional.arcface_loss"),
        emb_weight_labels,
        bad("margin", "scale", reduction=True, extra=(("margin", 30.0), ("scale", -1.0))),
        _LABELS,
    ),
    Spec(
        "functional.cosface_loss",
        "functional",
        bind("functional.cosface_loss"),
        emb_weight_labels,
        bad("margin", "scale", reduction=True, extra=(("scale", -1.0),)),
        _LABELS,
    ),
    Spec(
        "functional.hyperspherical_loss",
        "functional",
        bind("functional.hyperspherical_loss"),
        emb_weight_labels,
        bad("scale", reduction=True, extra=(("scale", -1.0),)),
        _LABELS,
    ),
    Spec(
        "functional.hyperspherical_prototypes",
        "functional",
        bind("functional.hyperspherical_prototypes"),
        emb_labels,
        (),
        _LABELS,
    ),
    Spec(
        "functional.arcface_target",
        "functional",
        bind("functional.arcface_target", margin=0.5),
        cos_y,
        bad("margin", extra=(("margin", 30.0), ("boundary", "nope"))),
    ),
    Spec(
        "functional.cosface_target", "functional", bind("functional.cosface_target", margin=0.35), cos_y, bad("margin")
    ),
    Spec(
        "functional.combined_target",
        "functional",
        bind("functional.combined_target", m1=1.0, m2=0.5, m3=0.1),
        cos_y,
        bad("m1", "m2", "m3"),
    ),
    Spec(
        "functional.adaface_target",
        "functional",
        bind("functional.adaface_target", margin=0.4),
        lambda d: {"cos_y": d.cosines(d.n), "margin_scaler": d.cosines(d.n)},
        bad("margin", "eps"),
    ),
    Spec(
        "functional.adaface_margin_scaler",
        "functional",
        bind("functional.adaface_margin_scaler", h=0.333),
        lambda d: {"norms": d.positive(d.n), "mean": d.positive(), "std": d.positive()},
        bad("h", "eps"),
    ),
    Spec(
        "functional.elastic_margins",
        "functional",
        bind("functional.elastic_margins", mean=0.5, std=0.05),
        cos_y,
        bad("mean", "std", extra=(("std", -1.0),)),
        differentiable=False,
        nan_propagates=False,
    ),
    Spec(
        "functional.assign_sorted_margins",
        "functional",
        bind("functional.assign_sorted_margins"),
        lambda d: {"cos_y": d.cosines(d.n), "margins": d.positive(d.n)},
        bad(extra=(("assignment", "nope"),)),
        nan_propagates=False,
    ),
    Spec(
        "functional.cosine_matrix",
        "functional",
        bind("functional.cosine_matrix"),
        lambda d: {"embeddings": d.floats(d.n, D), "weight": d.floats(C, D)},
    ),
    Spec(
        "functional.normalized_linear",
        "functional",
        bind("functional.normalized_linear"),
        # its contract: unit-norm rows (the heads normalise first); the centres are any scale
        lambda d: {"x_hat": torch.nn.functional.normalize(d.floats(d.n, D), dim=1), "weight": d.floats(C, D)},
    ),
    Spec(
        "functional.margin_logits",
        "functional",
        bind("functional.margin_logits", scale=30.0),
        cosine_target_labels,
        bad("scale"),
        _LABELS,
    ),
    Spec(
        "functional.margin_cross_entropy",
        "functional",
        bind("functional.margin_cross_entropy", scale=30.0),
        cosine_target_labels,
        bad("scale", reduction=True),
        _LABELS,
    ),
    Spec(
        "functional.sharded_margin_cross_entropy",
        "functional",
        bind("functional.sharded_margin_cross_entropy", scale=30.0),
        lambda d: {"cosine": d.cosines(d.n, C), "target": d.cosines(d.n), "local_labels": d.labels()},
        bad("scale", reduction=True),
        ("local_labels",),
    ),
    Spec(
        "functional.margin_softmax_logits",
        "functional",
        bind("functional.margin_softmax_logits", target_fn=lambda c: c - 0.35, scale=30.0),
        emb_weight_labels,
        bad("scale"),
        _LABELS,
    ),
    Spec(
        "functional.margin_softmax_loss",
        "functional",
        bind("functional.margin_softmax_loss", target_fn=lambda c: c - 0.35, scale=30.0),
        emb_weight_labels,
        bad("scale", reduction=True),
        _LABELS,
    ),
    Spec(
        "functional.margin_softmax_loss_and_cosine",
        "functional",
        bind("functional.margin_softmax_loss_and_cosine", target_fn=lambda c: c - 0.35, scale=30.0),
        emb_weight_labels,
        bad("scale", reduction=True),
        _LABELS,
    ),
    Spec(
        "functional.unpg_cross_entropy",
        "functional",
        bind("functional.unpg_cross_entropy", scale=30.0),
        lambda d: {**cosine_target_labels(d), "negatives": d.cosines(5)},
        bad("scale", reduction=True),
        _LABELS,
    ),
    Spec(
        "functional.negative_pair_cosines",
        "functional",
        bind("functional.negative_pair_cosines"),
        emb_labels,
        (),
        _LABELS,
    ),
    Spec(
        "functional.box_and_whisker_mask",
        "functional",
        bind("functional.box_and_whisker_mask"),
        lambda d: {"values": d.floats(d.n)},
        bad("whisker"),
        differentiable=False,
    ),
    Spec(
        "functional.info_nce_pair_losses",
        "functional",
        bind("functional.info_nce_pair_losses", temperature=0.1),
        pair_inputs,
        bad("temperature", extra=(("temperature", 0.0),)),
    ),
    Spec(
        "functional.relative_penalty",
        "functional",
        bind("functional.relative_penalty", temperature=0.1),
        lambda d: {k: v for k, v in pair_inputs(d).items() if k != "pos_mask"},
        bad("temperature", extra=(("temperature", 0.0),)),
    ),
    Spec(
        "functional.multi_similarity_loss",
        "functional",
        bind("functional.multi_similarity_loss"),
        pair_inputs,
        bad("alpha", "beta", "base"),
    ),
    Spec(
        "functional.multi_similarity_mine",
        "functional",
        bind("functional.multi_similarity_mine"),
        pair_inputs,
        bad("epsilon"),
        differentiable=False,
    ),
    Spec(
        "functional.tcm_row_losses",
        "functional",
        bind("functional.tcm_row_losses"),
        pair_inputs,
        bad("lambda_plus", "margin_plus"),
    ),
    Spec(
        "functional.threshold_consistent_margin_loss",
        "functional",
        bind("functional.threshold_consistent_margin_loss"),
        pair_inputs,
        bad("lambda_plus", "lambda_minus", "margin_plus", "margin_minus"),
    ),
    Spec(
        "functional.probability_margin_loss",
        "functional",
        bind("functional.probability_margin_loss"),
        logits_labels,
        bad(reduction=True),
        _LABELS,
    ),
    Spec(
        "functional.logit_bias_cross_entropy",
        "functional",
        bind("functional.logit_bias_cross_entropy", new_class_ids=[2]),
        logits_labels,
        bad("bias", reduction=True, extra=(("new_class_ids", [7]),)),
        _LABELS,
    ),
    Spec(
        "functional.focal_distillation_kl",
        "functional",
        bind("functional.focal_distillation_kl"),
        lambda d: {**student_teacher(d), "labels": d.labels()},
        bad("alpha_fd", "beta_fd", "temperature", reduction=True, extra=(("temperature", 0.0),)),
        _LABELS,
    ),
    Spec(
        "functional.focal_distillation_l2",
        "functional",
        bind("functional.focal_distillation_l2"),
        lambda d: {**student_teacher(d), "labels": d.labels()},
        bad("alpha_fd", "beta_fd", "scale", reduction=True),
        _LABELS,
    ),
    Spec(
        "functional.softmax_kd_loss",
        "functional",
        bind("functional.softmax_kd_loss"),
        student_teacher,
        bad("temperature", reduction=True, extra=(("temperature", 0.0),)),
    ),
    Spec(
        "functional.binary_kl",
        "functional",
        bind("functional.binary_kl"),
        student_teacher,
        bad("temperature", reduction=True, extra=(("temperature", 0.0),)),
    ),
    Spec(
        "functional.binary_kl_norm",
        "functional",
        bind("functional.binary_kl_norm"),
        student_teacher,
        bad("temperature", reduction=True, extra=(("temperature", 0.0),)),
    ),
    Spec("functional.align_gradients", "functional", bind("functional.align_gradients"), _grads, differentiable=False),
    Spec(
        "functional.aligned_backward", "functional", bind("functional.aligned_backward"), _aligned, differentiable=False
    ),
    Spec(
        "functional.landmark_kd_loss",
        "functional",
        bind("functional.landmark_kd_loss"),
        landmarks(("predictions", "ground_truth", "tough_teacher", "tolerant_teacher")),
        bad("main_weight", "band", extra=(("band", -0.5),)),
        any_shape=True,
    ),
    Spec(
        "functional.afcrps",
        "functional",
        bind("functional.afcrps"),
        ensemble_target,
        bad("alpha", reduction=True, extra=(("alpha", 1.5), ("method", "nope"))),
    ),
    Spec(
        "functional.crps",
        "functional",
        bind("functional.crps"),
        ensemble_target,
        bad(reduction=True, extra=(("method", "nope"),)),
    ),
    Spec(
        "functional.fair_crps",
        "functional",
        bind("functional.fair_crps"),
        ensemble_target,
        bad(reduction=True, extra=(("method", "nope"),)),
    ),
    Spec(
        "functional.class_prototypes",
        "functional",
        bind("functional.class_prototypes"),
        lambda d: {"support": d.floats(d.n, D), "support_labels": d.labels()},
        (),
        ("support_labels",),
    ),
    Spec(
        "functional.prototype_logits",
        "functional",
        bind("functional.prototype_logits"),
        lambda d: {"queries": d.floats(d.n, D), "prototypes": d.floats(C, D)},
        bad("temperature", extra=(("temperature", 0.0),)),
    ),
    Spec(
        "functional.proto_triplet_loss",
        "functional",
        bind("functional.proto_triplet_loss"),
        few_shot,
        bad("margin", "eps", reduction=True),
        ("support_labels", "query_labels"),
    ),
    Spec(
        "functional.icnn_loss",
        "functional",
        bind("functional.icnn_loss"),
        points_labels,
        bad(extra=(("k", 0), ("k", "4"), ("ipc", 0))),
        _LABELS,
        min_rows=2 * C,
    ),
    Spec(
        "functional.icnn_score",
        "functional",
        bind("functional.icnn_score"),
        points_labels,
        bad(extra=(("k", 0), ("k", "4"))),
        _LABELS,
        min_rows=2 * C,
    ),
    Spec("functional.surrogate_gradient_norm", "functional", bind("functional.surrogate_gradient_norm"), _surrogate),
    Spec(
        "functional.ignite_penalty_gradients",
        "functional",
        bind("functional.ignite_penalty_gradients"),
        _ignite,
        bad("rho", "radius", extra=(("radius", -1.0),)),
        differentiable=False,
    ),
    Spec(
        "functional.ramp_loss",
        "functional",
        bind("functional.ramp_loss"),
        scores_binary,
        bad("scale", reduction=True),
        _LABELS,
    ),
    *(
        Spec(
            f"functional.{name}",
            "functional",
            bind(f"functional.{name}", gamma=2.0),
            _robust,
            bad("gamma", "step_size", extra=(("gamma", -1.0), ("steps", -1), ("steps", 1.5), ("loss_fn", "ce"))),
            any_shape=True,
        )
        for name in ("wasserstein_adversarial_inputs", "wasserstein_robust_loss")
    ),
    Spec(
        "functional.dual_ascent_step",
        "functional",
        bind("functional.dual_ascent_step"),
        lambda d: {"multiplier": d.scale, "gradient_norm": d.scale / 2},
        bad("rho", "epsilon", "learning_rate", extra=(("multiplier", "1"), ("gradient_norm", NAN))),
        differentiable=False,
    ),
    # metrics
    Spec(
        "metrics.opis",
        "metric",
        bind("metrics.opis"),
        sim_labels,
        bad(extra=(("far_range", (0.5, 0.1)), ("num_thresholds", 0))),
        _LABELS,
        min_rows=4,
    ),
    Spec(
        "metrics.epsilon_opis",
        "metric",
        bind("metrics.epsilon_opis", epsilon=0.05),
        sim_labels,
        bad("epsilon", extra=(("far_range", (0.5, 0.1)), ("ranking", "nope"))),
        _LABELS,
        min_rows=4,
    ),
    Spec(
        "metrics.calibration_thresholds",
        "metric",
        bind("metrics.calibration_thresholds"),
        sim_labels,
        bad(extra=(("far_range", (0.5, 0.1)), ("num_thresholds", 0))),
        _LABELS,
        min_rows=4,
    ),
    Spec(
        "metrics.utility_curves",
        "metric",
        bind("metrics.utility_curves"),
        lambda d: {**sim_labels(d), "thresholds": torch.linspace(-1, 1, 5, device=d.device, dtype=d.dtype)},
        (),
        _LABELS,
        min_rows=4,
    ),
    Spec("metrics.tolerance", "metric", bind("metrics.tolerance"), emb_labels, (), _LABELS, min_rows=4),
    Spec(
        "metrics.uniformity",
        "metric",
        bind("metrics.uniformity"),
        lambda d: {"embeddings": d.floats(d.n, D)},
        bad("t", extra=(("t", -1.0),)),
        min_rows=2,
    ),
    Spec("metrics.pair_scores", "metric", bind("metrics.pair_scores"), emb_labels, (), _LABELS, min_rows=2 * C),
    Spec(
        "metrics.retrieval_metrics",
        "metric",
        bind("metrics.retrieval_metrics"),
        lambda d: {"query_emb": d.floats(d.n, D), "query_labels": d.labels()},
        (),
        ("query_labels",),
        min_rows=C + 1,
    ),
    Spec(
        "metrics.roc_curve",
        "metric",
        bind("metrics.roc_curve"),
        lambda d: {"scores": metric_array(d, d.floats(d.n)), "is_same": metric_array(d, d.binary().bool())},
        min_rows=2,
    ),
    Spec(
        "metrics.tar_at_far",
        "metric",
        bind("metrics.tar_at_far", far=0.1),
        lambda d: {"scores": metric_array(d, d.floats(d.n)), "is_same": metric_array(d, d.binary().bool())},
        bad("far", extra=(("far", 1.5),)),
        min_rows=2,
    ),
    Spec(
        "metrics.verification_accuracy",
        "metric",
        bind("metrics.verification_accuracy", folds=2),
        lambda d: {"scores": metric_array(d, d.floats(d.n)), "is_same": metric_array(d, d.binary().bool())},
        bad(extra=(("folds", 0), ("folds", "2"))),
        min_rows=4,
    ),
    Spec(
        "metrics.precision_at_k",
        "metric",
        bind("metrics.precision_at_k", k=2),
        lambda d: {"scores": metric_array(d, d.floats(d.n, C)), "targets": metric_array(d, d.multi_hot())},
        bad(extra=(("k", 0), ("k", "2"))),
        min_rows=1,
    ),
    Spec(
        "metrics.multilabel_metrics",
        "metric",
        bind("metrics.multilabel_metrics", k=2),
        lambda d: {"scores": metric_array(d, d.unit_interval(d.n, C)), "targets": metric_array(d, d.multi_hot())},
        bad("threshold", extra=(("k", 0), ("threshold", 1.5))),
        min_rows=1,
    ),
    Spec(
        "metrics.multilabel_compute_metrics",
        "metric",
        lambda hp: (
            lambda predictions, label_ids: metrics.multilabel_compute_metrics(**{"k": 2, **hp})(
                EvalPrediction(predictions, label_ids)
            )
        ),
        lambda d: {"predictions": metric_array(d, d.floats(d.n, C)), "label_ids": metric_array(d, d.multi_hot())},
        bad("threshold", extra=(("k", 0),)),
        min_rows=1,
    ),
    Spec(
        "metrics.tune_threshold",
        "metric",
        bind("metrics.tune_threshold"),
        lambda d: {"scores": metric_array(d, d.unit_interval(d.n, C)), "targets": metric_array(d, d.multi_hot())},
        min_rows=1,
    ),
    Spec(
        "metrics.ranking_metrics",
        "metric",
        bind("metrics.ranking_metrics", k=3),
        lambda d: {
            "ranked": [[bool((i + j) % 2) for j in range(4)] for i in range(d.n)],
            "relevant_counts": [2 + i % 2 for i in range(d.n)],
        },
        bad(extra=(("k", 0), ("relevant_counts", [-1]))),
        min_rows=1,
        dtypes=(torch.float32,),
    ),
    Spec(
        "metrics.negative_flip_rate",
        "metric",
        bind("metrics.negative_flip_rate"),
        lambda d: {
            "old_predictions": metric_array(d, d.labels()),
            "new_predictions": metric_array(d, d.labels()),
            "labels": metric_array(d, d.labels()),
        },
        (),
        min_rows=1,
        dtypes=(torch.float32,),
    ),
    Spec(
        "metrics.relative_negative_flip_rate",
        "metric",
        bind("metrics.relative_negative_flip_rate"),
        lambda d: {
            "old_predictions": metric_array(d, d.labels()),
            "new_predictions": metric_array(d, d.labels()),
            "labels": metric_array(d, d.labels()),
        },
        (),
        min_rows=1,
        dtypes=(torch.float32,),
    ),
    Spec(
        "metrics.negative_flip_metrics",
        "metric",
        bind("metrics.negative_flip_metrics"),
        lambda d: {
            "old_predictions": metric_array(d, d.labels()),
            "new_predictions": metric_array(d, d.labels()),
            "labels": metric_array(d, d.labels()),
        },
        (),
        min_rows=1,
        dtypes=(torch.float32,),
    ),
    Spec(
        "metrics.negative_flip_compute_metrics",
        "metric",
        lambda hp: (
            lambda old_predictions, predictions, labels: metrics.negative_flip_compute_metrics(old_predictions, **hp)(
                EvalPrediction(predictions, labels)
            )
        ),
        lambda d: {
            "old_predictions": metric_array(d, d.labels()),
            "predictions": metric_array(d, d.floats(d.n, C)),
            "labels": metric_array(d, d.labels()),
        },
        bad(extra=(("num_old_classes", 0),)),
        min_rows=1,
    ),
    Spec(
        "metrics.project_linf",
        "metric",
        bind("metrics.project_linf", epsilon=0.1),
        lambda d: {"inputs": d.unit_interval(d.n, D), "clean": d.unit_interval(d.n, D)},
        bad("epsilon", extra=(("epsilon", -1.0),)),
    ),
    Spec(
        "metrics.pgd_attack",
        "metric",
        bind("metrics.pgd_attack", epsilon=0.1, steps=3),
        _attack_inputs,
        bad("epsilon", extra=(("epsilon", -1.0), ("steps", 0))),
        _LABELS,
    ),
    Spec(
        "metrics.pma_attack",
        "metric",
        bind("metrics.pma_attack", epsilon=0.1, steps=3),
        _attack_inputs,
        bad("epsilon", extra=(("epsilon", -1.0), ("steps", 0))),
        _LABELS,
    ),
    Spec(
        "metrics.pma_robust_accuracy",
        "metric",
        lambda hp: (
            lambda model, data: metrics.pma_robust_accuracy(
                model, data, **{"epsilon": 0.1, "steps": 3, "progress": False, **hp}
            )
        ),
        lambda d: (lambda a: {"model": a["model"], "data": (a["inputs"], a["labels"])})(_attack_inputs(d)),
        bad("epsilon", extra=(("epsilon", -1.0), ("attack", "nope"))),
        min_rows=1,
    ),
    Spec(
        "metrics.NaiveBayesProbe",
        "metric",
        lambda hp: lambda features, labels: metrics.NaiveBayesProbe(C, **hp).fit(features, labels).predict(features),
        lambda d: {"features": d.floats(d.n, D), "labels": d.labels()},
        bad("var_smoothing", extra=(("var_smoothing", -1.0), ("priors", [0.5, 0.5, 0.5]))),
        _LABELS,
        min_rows=C,
    ),
    Spec(
        "metrics.learning_curve",
        "metric",
        bind("metrics.learning_curve", shots_per_class=(1,), seeds=(0,)),
        lambda d: {
            "features": d.floats(d.n, D),
            "labels": d.labels(),
            "test_features": d.floats(d.n, D),
            "test_labels": d.labels(),
        },
        bad(extra=(("shots_per_class", (0,)),)),
        ("labels", "test_labels"),
        min_rows=2 * C,
    ),
)

#: Exports that are not tensor operations, and why the fuzz suite leaves them out.
NOT_FUZZED: dict[str, str] = {
    "heads.HEAD_TYPES": "a name -> class table (its heads are fuzzed, and build_head through it)",
    "heads.MarginHead": "abstract base class (its subclasses are fuzzed)",
    "losses.MetricLossBase": "abstract base class (its subclasses are fuzzed)",
    "losses.PairBatch": "a data container passed to MetricLossBase.compute_loss",
    "losses.bag_dataset": "a datasets.Dataset transform, not a tensor operation (tests/losses cover it)",
    "metrics.RobustnessResult": "the dataclass pma_robust_accuracy returns (fuzzed through it)",
}

#: Entry points whose labels are arbitrary ids (pairs, prototypes, neighbours), not indices into C classes, or
#: may name classes beyond the logits' columns.
_ID_LABELS = {
    "losses.AdaptiveMarginTripletLoss",
    "losses.MultiSimilarityLoss",
    "losses.MultiSimilarityMiner",
    "losses.TemperatureInfoNCELoss",
    "losses.ThresholdConsistentMarginLoss",
    "losses.ProtoTripletLoss",
    "losses.ICNNLoss",
    "functional.negative_pair_cosines",
    "functional.class_prototypes",
    "functional.hyperspherical_prototypes",
    "functional.proto_triplet_loss",
    "functional.icnn_loss",
    "functional.icnn_score",
    # A label >= K (a class the old teacher does not have) is documented as "teacher wrong".
    "functional.focal_distillation_kl",
    "functional.focal_distillation_l2",
}
SPECS = tuple(
    replace(spec, class_labels=False) if spec.name in _ID_LABELS or spec.kind == "metric" else spec for spec in SPECS
)

BY_NAME: dict[str, Spec] = {spec.name: spec for spec in SPECS}

assert len(BY_NAME) == len(SPECS), "duplicate spec names"
