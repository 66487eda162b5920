"""Run one fuzz input through an entry point and classify what happened (shared by the tests and the census).

Every input ends in one of four categories:

- ``ok``: a valid input gave finite values (and finite gradients); a non-finite input gave a non-finite loss
  (heads, losses, functionals) and left the module's state alone;
- ``clear error``: a ValueError/TypeError whose message names the argument (for an invalid input: the argument
  that is wrong; for a valid but degenerate one, e.g. an empty batch: one of the call's arguments);
- ``silent failure``: a result that should not have come back: NaN/inf from finite inputs, a value from an
  invalid input, a plausible finite number (or a metric's figure) from a non-finite input, or state that a
  rejected or non-finite batch changed;
- ``opaque crash``: any other exception, or a ValueError/TypeError that does not name the argument.

`Outcome.passed` says whether the property holds (a clear error on a valid input passes only where the spec
allows it: an empty batch, or fewer rows than `Spec.min_rows`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tests.fuzz.specs import Draw, Spec

OK, CLEAR, SILENT, OPAQUE = "ok", "clear error", "silent failure", "opaque crash"


@dataclass(frozen=True)
class Outcome:
    """What one input did: its category, whether the property holds, and a one-line account."""

    category: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Invalid:
    """One invalid input: the argument it is about, the hyperparameter or input overrides, a label for reports."""

    argument: str
    params: dict[str, Any]
    inputs: dict[str, Any]
    label: str
    may_compute: bool = False  # an integer tensor where floats are expected: a clear error, or a finite value


# ---- helpers ---------------------------------------------------------------------------------------------------


def _build(spec: Spec, draw: Draw, params: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """The callable (a module moved to the draw's device and dtype) and its valid inputs."""
    fn = spec.make(params or {})
    if isinstance(fn, nn.Module):
        fn = fn.to(draw.device)
        if spec.kind != "metric":
            fn = fn.to(draw.dtype)
    return fn, spec.inputs(draw)


def _leaves(spec: Spec, fn: Any, inputs: dict[str, Any]) -> list[Tensor]:
    """Make the float tensor inputs leaves that require grad; return them with the module's parameters."""
    if not spec.differentiable or spec.kind == "metric":
        return []
    leaves = []
    for name, value in inputs.items():
        if isinstance(value, Tensor) and value.is_floating_point() and value.grad_fn is None:
            inputs[name] = value.detach().requires_grad_()
            leaves.append(inputs[name])
    if isinstance(fn, nn.Module):
        leaves += [p for p in fn.parameters() if p.requires_grad]
    return leaves


def _values(result: Any) -> Iterator[Any]:
    """Every number, array or tensor inside a result (tuples, lists, dicts, dataclasses)."""
    if isinstance(result, (Tensor, np.ndarray, float, np.floating)):
        yield result
    elif isinstance(result, dict):
        for value in result.values():
            yield from _values(value)
    elif isinstance(result, (tuple, list)):
        for value in result:
            yield from _values(value)
    elif hasattr(result, "__dataclass_fields__"):
        yield from _values(vars(result))


def _finite(value: Any) -> bool:
    if isinstance(value, Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    return bool(np.isfinite(np.asarray(value, dtype=np.float64)).all())


def _float_tensors(result: Any) -> list[Tensor]:
    return [v for v in _values(result) if isinstance(v, Tensor) and v.is_floating_point()]


def _has_float(result: Any) -> bool:
    return any((isinstance(v, Tensor) and v.is_floating_point()) or not isinstance(v, Tensor) for v in _values(result))


def _state(fn: Any) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in fn.state_dict().items()} if isinstance(fn, nn.Module) else {}


def _state_changed(before: dict[str, Tensor], fn: Any) -> str:
    after = _state(fn)
    changed = [k for k in before if not torch.equal(before[k].nan_to_num(1e30), after[k].nan_to_num(1e30))]
    return f"state changed: {', '.join(changed)}" if changed else ""


def _call(fn: Any, inputs: dict[str, Any]) -> Any:
    return fn(**inputs)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def _names(message: str, names: list[str]) -> bool:
    message = message.lower()
    return any(name.lower() in message for name in names)


def _rows(spec: Spec, draw: Draw) -> bool:
    """Whether a clear error is an acceptable answer for this many rows."""
    return draw.n == 0 or draw.n < spec.min_rows


# ---- the three properties ------------------------------------------------------------------------------------


def run_valid(spec: Spec, draw: Draw, params: dict[str, Any] | None = None) -> Outcome:
    """Finite valid inputs give finite values and finite gradients (or, where allowed, a clear error)."""
    fn, inputs = _build(spec, draw, params)
    return _run_finite(spec, draw, fn, inputs)


def _run_finite(spec: Spec, draw: Draw, fn: Any, inputs: dict[str, Any]) -> Outcome:
    leaves = _leaves(spec, fn, inputs)
    try:
        result = _call(fn, inputs)
    except (ValueError, TypeError) as exc:
        arguments = [*inputs, *(name for name, _ in spec.bad_params)]
        if _names(str(exc), arguments) and _rows(spec, draw):
            return Outcome(CLEAR, True, _error(exc))
        if _names(str(exc), arguments):
            return Outcome(CLEAR, False, f"valid input rejected: {_error(exc)}")
        return Outcome(OPAQUE, False, _error(exc))
    except Exception as exc:  # any other exception is the finding
        return Outcome(OPAQUE, False, _error(exc))
    bad = [i for i, v in enumerate(_values(result)) if not _finite(v)]
    if bad:
        return Outcome(SILENT, False, f"non-finite output (part {bad[0]}): {_short(result)}")
    outputs = [t for t in _float_tensors(result) if t.requires_grad]
    if leaves and outputs:
        try:
            total = sum(t.float().sum() for t in outputs)
            grads = torch.autograd.grad(total, leaves, allow_unused=True)
        except Exception as exc:  # any other exception is the finding
            return Outcome(OPAQUE, False, f"backward: {_error(exc)}")
        if any(g is not None and not bool(torch.isfinite(g).all()) for g in grads):
            return Outcome(SILENT, False, "non-finite gradient")
    return Outcome(OK, True)


def run_masked(spec: Spec, draw: Draw) -> Outcome:
    """A non-target class masked with -inf (as F.cross_entropy allows) still gives finite values and gradients."""
    fn, inputs = _build(spec, draw)
    logits, labels = inputs["logits"], inputs["labels"]
    masked = logits.clone()
    masked[torch.arange(len(labels)), (labels + 1) % logits.shape[1]] = float("-inf")
    inputs["logits"] = masked
    return _run_finite(spec, draw, fn, inputs)


def invalid_cases(spec: Spec, draw: Draw) -> list[Invalid]:
    """The spec's bad hyperparameters and inputs, and the bad labels and float inputs derived from its inputs."""
    inputs = spec.inputs(draw)
    cases = []
    for name, value in spec.bad_params:
        if name in inputs:
            bad_input = value(inputs) if callable(value) else value
            cases.append(Invalid(name, {}, {name: bad_input}, f"{name}={_short(bad_input)}"))
        else:
            cases.append(Invalid(name, {name: value}, {}, f"{name}={value!r}"))
    for name in spec.labels:
        labels = inputs[name]
        as_tensor = torch.as_tensor(labels)
        if spec.class_labels:
            cases.append(Invalid(name, {}, {name: torch.full_like(as_tensor, 3 + 7)}, f"{name} out of range (10)"))
            cases.append(Invalid(name, {}, {name: as_tensor.float()}, f"{name} as float"))
        longer = torch.cat([as_tensor, as_tensor[:1]])
        cases.append(
            Invalid(
                name, {}, {name: longer if isinstance(labels, Tensor) else longer.numpy()}, f"{name} one row too many"
            )
        )
    if spec.kind != "metric" and spec.differentiable:
        for name, value in inputs.items():
            if isinstance(value, Tensor) and value.is_floating_point():
                cases.append(Invalid(name, {}, {name: value.round().long()}, f"{name} as int64", may_compute=True))
                if value.dim() >= 2 and not spec.any_shape:
                    cases.append(Invalid(name, {}, {name: value[..., None]}, f"{name} with an extra dimension"))
    return cases


def run_invalid(spec: Spec, draw: Draw, case: Invalid) -> Outcome:
    """An invalid input raises a ValueError/TypeError naming the argument, and leaves the module's state alone."""
    try:
        fn, inputs = _build(spec, draw, case.params)
    except (ValueError, TypeError) as exc:
        if _names(str(exc), [case.argument]):
            return Outcome(CLEAR, True, _error(exc))
        return Outcome(OPAQUE, False, f"vague error: {_error(exc)}")
    except Exception as exc:  # any other exception is the finding
        return Outcome(OPAQUE, False, _error(exc))
    before = _state(fn)
    inputs.update(case.inputs)
    try:
        result = _call(fn, inputs)
    except (ValueError, TypeError) as exc:
        changed = _state_changed(before, fn)
        if changed:
            return Outcome(SILENT, False, f"rejected ({_error(exc)}) but {changed}")
        if _names(str(exc), [case.argument]):
            return Outcome(CLEAR, True, _error(exc))
        return Outcome(OPAQUE, False, f"vague error: {_error(exc)}")
    except Exception as exc:  # any other exception is the finding
        return Outcome(OPAQUE, False, _error(exc))
    if case.may_compute and all(_finite(v) for v in _values(result)):
        return Outcome(OK, True, "computed in floating point")
    return Outcome(SILENT, False, f"accepted, returned {_short(result)}")


def nonfinite_targets(spec: Spec, draw: Draw) -> list[str]:
    """The float inputs (leaf tensors or arrays with at least two rows) where a NaN or inf can be put."""
    if not spec.nan_propagates:
        return []
    return [name for name, value in spec.inputs(draw).items() if _poisonable(value)]


def _poisonable(value: Any) -> bool:
    if isinstance(value, Tensor):
        return value.is_floating_point() and value.grad_fn is None and value.dim() >= 1 and len(value) > 1
    is_float_array = isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)
    return is_float_array and value.ndim >= 1 and len(value) > 1


def run_nonfinite(spec: Spec, draw: Draw, target: str, value: float) -> Outcome:
    """One non-finite entry in `target`: a metric raises a ValueError naming it; a loss comes out non-finite
    (never a plausible finite number) or raises a clear error; a module's state is left unchanged."""
    fn, inputs = _build(spec, draw)
    before = _state(fn)
    # All of row 1 (entry 1 of a vector): one entry could sit where the value is unused by design (the diagonal of
    # a similarity matrix, a positive pair of a negatives-only term, the target column that `target` replaces).
    poisoned = inputs[target].clone() if isinstance(inputs[target], Tensor) else inputs[target].copy()
    poisoned[1] = value
    inputs[target] = poisoned
    try:
        result = _call(fn, inputs)
    except (ValueError, TypeError) as exc:
        changed = _state_changed(before, fn)
        if changed:
            return Outcome(SILENT, False, f"rejected but {changed}")
        if _names(str(exc), [target]):
            return Outcome(CLEAR, True, _error(exc))
        return Outcome(OPAQUE, False, f"vague error: {_error(exc)}")
    except Exception as exc:  # any other exception is the finding
        return Outcome(OPAQUE, False, _error(exc))
    changed = _state_changed(before, fn)
    if changed:
        return Outcome(SILENT, False, changed)
    if spec.kind == "metric":
        return Outcome(SILENT, False, f"metric returned {_short(result)} instead of raising")
    if not _has_float(result) or any(not _finite(v) for v in _values(result)):
        return Outcome(OK, True)
    return Outcome(SILENT, False, f"finite result from a non-finite input: {_short(result)}")


def _short(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype}, {value.detach().flatten()[:4].tolist()})"
    return repr(value)[:120]


def census_draws(spec: Spec) -> Iterator[Draw]:
    """The census's fixed inputs per entry point: rows x dtypes x scales (and numpy for metrics)."""
    for n in (0, 1, 2, 5):
        for dtype in spec.dtypes:
            for scale in (1.0, 1e3):
                yield Draw(n, dtype, scale=scale)
        if spec.kind == "metric" and torch.float64 in spec.dtypes:
            yield Draw(n, torch.float64, numpy=True)


def with_device(draw: Draw, device: str) -> Draw:
    return replace(draw, device=device)
