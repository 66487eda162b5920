"""afCRPS (alpha = 0.95): the O(M log M) sorted form against the paper's O(M^2) pairwise eq. (4) (the form anemoi's
`CRPS(backend="stable")` uses), forward + backward in float32 on the same random ensembles, for M = 8 .. 1,024
members. The batch shrinks with M so the pairwise form's (batch, M, M) tensors stay at 2^24 elements (64 MiB each):
4,096 targets for M <= 64, then 2^24 / M^2 (1,024 at M = 128, 256 at M = 256, 16 at M = 1,024). Before timing,
each case checks that both forms give the same values (the max abs difference is printed)."""

from __future__ import annotations

import sys

import torch

from benchmarks._harness import BenchRow, Step, measure_case, memory_main

MEMBERS = (8, 32, 128, 256, 1024)
CASES = tuple(f"M={members}" for members in MEMBERS)
ELEMENTS = 2**24


def batch_size(members: int) -> int:
    return min(4096, ELEMENTS // members**2)


def inputs(case: str, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    members = int(case.removeprefix("M="))
    g = torch.Generator().manual_seed(0)
    rows = batch_size(members)
    ensemble = torch.randn(rows, members, generator=g).to(device).requires_grad_(True)
    return ensemble, torch.randn(rows, generator=g).to(device)


def make_steps(case: str, device: str) -> tuple[Step, Step]:
    from hf_margin.functional.crps import afcrps

    ensemble, target = inputs(case, device)

    def sorted_form() -> None:
        afcrps(ensemble, target, 0.95, method="sorted").backward()

    def pairwise_form() -> None:
        afcrps(ensemble, target, 0.95, method="pairwise").backward()

    return sorted_form, pairwise_form


def max_difference(case: str, device: str) -> float:
    """Largest |sorted - pairwise| over the batch's scores (float32); raises if they disagree."""
    from hf_margin.functional.crps import afcrps

    ensemble, target = inputs(case, device)
    with torch.no_grad():
        ours = afcrps(ensemble, target, 0.95, method="sorted", reduction="none")
        reference = afcrps(ensemble, target, 0.95, method="pairwise", reduction="none")
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
    return float((ours - reference).abs().max())


def run(device: str = "cpu", quick: bool = False) -> list[BenchRow]:
    rows = []
    for case in CASES:
        difference = max_difference(case, device)
        timing = measure_case(__name__, case, make_steps, 5 if quick else 30, device)
        rows.append(
            BenchRow(
                f"afCRPS sorted vs pairwise (fwd+bwd, B={batch_size(int(case[2:]))}, float32)",
                case,
                "pairwise eq. (4)",
                *timing,
            )
        )
        print(
            f"afCRPS {case}: max |sorted - pairwise| = {difference:.2e}, time ratio {rows[-1].time_ratio:.3f}, "
            f"memory ratio {rows[-1].memory_ratio:.3f}",
            file=sys.stderr,
        )
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:
    memory_main(make_steps)
