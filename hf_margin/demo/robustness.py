"""Demo entry: the probability-margin attack (PMA, arXiv 2411.15210) against PGD on the cross-entropy, at the same
L-infinity radius and the same gradient budget, on a small CNN trained on scikit-learn's 8x8 digits.

The CNN (the imbalance demo's digits head) is trained with cross-entropy on a stratified 80% of the 1,797 digits
(pixels scaled to [0, 1]); the other 20% are attacked at each `epsilons` radius. PMA runs `restarts` x 2 rounds of
`steps` steps, PGD-CE 2 x `restarts` random starts of `steps` steps (step 2.5 epsilon / steps), both with early
stop. Reported: attack success rate (the share of correctly classified test digits the attack flips; higher is a
stronger attack) and robust accuracy.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.demo.imbalance import Head
from hf_margin.metrics.robustness import pma_robust_accuracy

DATASET = "sklearn digits 8x8 (small CNN)"


@dataclass(frozen=True)
class RobustnessSetup:
    """Budget of the comparison.

    Args:
        epsilons: L-infinity radii (pixels in [0, 1]).
        steps: attack steps per round (PMA) / per start (PGD); the paper uses 100.
        restarts: PMA restarts (PGD gets twice as many starts: the same number of gradient steps).
        train_steps: Adam steps of the CNN's cross-entropy training.
        test_share: share of the digits held out and attacked.
        max_samples: attack at most this many test digits.
        seed: seed of the split, the initialisation, the batches and the random starts.
    """

    epsilons: tuple[float, ...] = (0.05, 0.1)
    steps: int = 100
    restarts: int = 1
    train_steps: int = 400
    test_share: float = 0.2
    max_samples: int | None = None
    seed: int = 0


def digits_split(setup: RobustnessSetup) -> dict[str, torch.Tensor]:
    """A stratified train/test split of sklearn's digits, pixels in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.data / 16.0, digits.target
    train_x, test_x, train_y, test_y = train_test_split(
        x, y, test_size=setup.test_share, stratify=y, random_state=setup.seed
    )
    as_x = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return {
        "train_x": as_x(train_x),
        "train_y": torch.as_tensor(train_y),
        "test_x": as_x(test_x),
        "test_y": torch.as_tensor(test_y),
    }


def train_cnn(split: dict[str, torch.Tensor], setup: RobustnessSetup) -> nn.Module:
    """The digits CNN trained with cross-entropy (Adam, batch 64)."""
    torch.manual_seed(setup.seed)
    model = Head("cnn", 64, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(setup.seed)
    for _ in range(setup.train_steps):
        rows = torch.randint(len(split["train_y"]), (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(split["train_x"][rows])["logits"], split["train_y"][rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def run(context: DemoContext, setup: RobustnessSetup = RobustnessSetup()) -> list[DemoRow]:
    split = digits_split(setup)
    results: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}
    with single_thread():
        model = train_cnn(split, setup)
        runs = [(attack, epsilon) for epsilon in setup.epsilons for attack in ("pma", "pgd")]
        for attack, epsilon in context.progress(runs, desc="PMA demo", unit="attack", leave=False):
            start = time.perf_counter()
            result = pma_robust_accuracy(
                model,
                (split["test_x"], split["test_y"]),
                epsilon,
                setup.steps,
                setup.restarts,
                attack,
                batch_size=512,
                max_samples=setup.max_samples,
                seed=setup.seed,
                progress=False,
            )
            key = f"{attack} eps={epsilon:g}"
            results[key] = {
                "clean accuracy": result.clean_accuracy,
                "robust accuracy": result.robust_accuracy,
                "attack success rate": 1 - result.robust_accuracy / result.clean_accuracy,
                "samples": result.samples,
            }
            timings[key] = time.perf_counter() - start
    report = {"setup": asdict(setup), "dataset": DATASET, "results": results, "seconds": timings}
    (context.out_dir / "robustness.json").write_text(json.dumps(report, indent=2))
    return [
        DemoRow(
            "robustness",
            f"PMA (eps={epsilon:g})",
            f"PGD-CE (eps={epsilon:g})",
            "attack success rate",
            results[f"pma eps={epsilon:g}"]["attack success rate"],
            results[f"pgd eps={epsilon:g}"]["attack success rate"],
            timings[f"pma eps={epsilon:g}"],
            DATASET,
        )
        for epsilon in setup.epsilons
    ]
