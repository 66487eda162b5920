"""Property-based fuzz of every public head, loss, functional twin and metric (issue 19; tests/fuzz/specs.py).

Properties (the policy in docs/reliability.md):

- finite valid inputs (any dtype of fp32/fp64/bf16/fp16, empty and size-1 batches, extreme but finite values)
  give finite values and finite gradients, or, for an empty or too-small batch, a ValueError naming an argument;
- a class masked with -inf in the logits (as F.cross_entropy allows) still gives finite values and gradients;
- invalid arguments and inputs raise ValueError/TypeError naming the argument, and leave module state unchanged;
- a NaN or inf inside a tensor makes a loss non-finite (never a plausible number) and a metric raise, and never
  changes module state (running statistics, per-example lambdas, buffers).

Run the deeper search with ``HYPOTHESIS_PROFILE=deep`` or ``--hypothesis-profile=deep``.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import hf_margin.functional
import hf_margin.heads
import hf_margin.losses
import hf_margin.metrics
from tests.fuzz import harness
from tests.fuzz.specs import NOT_FUZZED, SPECS, Draw, Spec

pytestmark = pytest.mark.filterwarnings("ignore")

_IDS = [spec.name for spec in SPECS]
_ROWS = st.sampled_from([0, 1, 2, 3, 5, 8])
_SCALES = st.sampled_from([1e-3, 1.0, 30.0, 1e3])
_SEEDS = st.integers(0, 2**16)


def _draw(data: st.DataObject, spec: Spec, device: str, rows: st.SearchStrategy[int] = _ROWS) -> Draw:
    dtype = data.draw(st.sampled_from(spec.dtypes), label="dtype")
    numpy = spec.kind == "metric" and device == "cpu" and dtype in (torch.float32, torch.float64)
    return Draw(
        n=data.draw(rows, label="rows"),
        dtype=dtype,
        device=device,
        scale=data.draw(_SCALES, label="scale"),
        seed=data.draw(_SEEDS, label="seed"),
        numpy=numpy and data.draw(st.booleans(), label="numpy"),
    )


def _check(outcome: harness.Outcome, spec: Spec, draw: Draw, what: str = "") -> None:
    assert outcome.passed, f"{spec.name} {what} {draw}: {outcome.category}: {outcome.detail}"


def test_every_public_entry_point_is_fuzzed() -> None:
    """A new export of heads/losses/functional/metrics needs a spec (or a reason in NOT_FUZZED)."""
    exported = {
        f"{package.__name__.rpartition('.')[2]}.{name}"
        for package in (hf_margin.heads, hf_margin.losses, hf_margin.functional, hf_margin.metrics)
        for name in package.__all__
    }
    covered = {spec.name for spec in SPECS} | set(NOT_FUZZED)
    assert exported - covered == set()
    assert covered - exported == set()


@pytest.mark.parametrize("spec", SPECS, ids=_IDS)
@given(data=st.data())
def test_finite_inputs_give_finite_values_and_gradients(spec: Spec, device: str, data: st.DataObject) -> None:
    draw = _draw(data, spec, device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check(harness.run_valid(spec, draw), spec, draw)


_MASKABLE = [spec for spec in SPECS if spec.kind != "metric" and {"logits", "labels"} <= set(spec.inputs(Draw(2)))]


@pytest.mark.parametrize("spec", _MASKABLE, ids=[spec.name for spec in _MASKABLE])
@given(data=st.data())
def test_a_class_masked_with_minus_inf_gives_finite_values(spec: Spec, device: str, data: st.DataObject) -> None:
    draw = _draw(data, spec, device, rows=st.sampled_from([1, 2, 5]))
    _check(harness.run_masked(spec, draw), spec, draw, "(a non-target class at -inf)")


_INVALID = [(spec, case) for spec in SPECS for case in harness.invalid_cases(spec, Draw(5))]


@pytest.mark.parametrize(("spec", "case"), _INVALID, ids=[f"{spec.name}-{case.label}" for spec, case in _INVALID])
def test_invalid_input_raises_a_clear_error(spec: Spec, case: harness.Invalid, device: str) -> None:
    draw = Draw(5, device=device)
    case = next(c for c in harness.invalid_cases(spec, draw) if c.label == case.label)  # rebuilt on the device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check(harness.run_invalid(spec, draw, case), spec, draw, case.label)


_NONFINITE = [(spec, target) for spec in SPECS for target in harness.nonfinite_targets(spec, Draw(6))]


@pytest.mark.parametrize(("spec", "target"), _NONFINITE, ids=[f"{spec.name}-{target}" for spec, target in _NONFINITE])
@given(data=st.data())
def test_nonfinite_input_is_never_a_plausible_number_and_leaves_state_alone(
    spec: Spec, target: str, device: str, data: st.DataObject
) -> None:
    draw = _draw(data, spec, device, rows=st.sampled_from([max(6, spec.min_rows), 8]))
    value = data.draw(st.sampled_from([float("nan"), float("inf")]), label="value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check(harness.run_nonfinite(spec, draw, target, value), spec, draw, f"{target}[1] = {value}")
