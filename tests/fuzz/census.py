"""The fuzz census: a fixed, deterministic set of inputs over every fuzzed entry point, counted by outcome.

Run ``python -m tests.fuzz.census`` (``--failures`` lists every input that breaks a property). The figures go in
docs/reliability.md: inputs tried, clear errors, silent failures (target 0) and opaque crashes (target 0).
"""

from __future__ import annotations

import argparse
import collections
import warnings

import torch

from tests.fuzz import harness
from tests.fuzz.specs import SPECS, Draw


def census() -> list[tuple[str, str, str, harness.Outcome]]:
    """(entry point, property, input, outcome) for every census input."""
    rows = []
    for spec in SPECS:
        for draw in harness.census_draws(spec):
            rows.append((spec.name, "finite", str(draw), harness.run_valid(spec, draw)))
        for case in harness.invalid_cases(spec, Draw(5)):
            rows.append((spec.name, "invalid", case.label, harness.run_invalid(spec, Draw(5), case)))
        for target in harness.nonfinite_targets(spec, Draw(max(6, spec.min_rows))):
            for value in (float("nan"), float("inf")):
                outcome = harness.run_nonfinite(spec, Draw(max(6, spec.min_rows)), target, value)
                rows.append((spec.name, "non-finite", f"{target}[1] = {value}", outcome))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="list every input that breaks a property")
    args = parser.parse_args()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = census()
    counts = collections.Counter(outcome.category for *_, outcome in rows)
    failing = [row for row in rows if not row[3].passed]
    print(f"entry points: {len(SPECS)}")
    print(f"inputs tried: {len(rows)}")
    for category, label in (
        (harness.OK, "ok"),
        (harness.CLEAR, "clear errors"),
        (harness.SILENT, "silent failures"),
        (harness.OPAQUE, "opaque crashes (and vague errors)"),
    ):
        print(f"{label}: {counts[category]}")
    print(f"inputs breaking a property: {len(failing)} (in {len({row[0] for row in failing})} entry points)")
    if args.failures:
        for name, prop, label, outcome in failing:
            print(f"{name} | {prop} | {label} | {outcome.category}: {outcome.detail}")


if __name__ == "__main__":
    main()
