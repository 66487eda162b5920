"""Demo entry: ModHiFi pruning and unlearning of a small digits classifier, against magnitude pruning.

Kashyap et al., "ModHiFi: Identifying High Fidelity predictive components for Model Modification" (arXiv
2511.19566). An MLP (64 -> h -> h -> 10, ReLU) is trained on sklearn digits (1,797 real 8x8 images) for each seed;
then, without any fine-tuning:

- **pruning**: a share of the neurons of both hidden layers is removed (the inputs of the 2nd and 3rd linear
  layers). ModHiFi-P ranks them by singleton fidelity on `calibration_rows` training images and compensates the
  kept weights with delta*; the baseline removes the inputs with the smallest weight-column norm (structured
  magnitude pruning, no compensation); the ablation "magnitude + delta*" uses the magnitude selection with ModHiFi's
  compensation, to separate what the selection and the compensation contribute. Test accuracy at each sparsity.
- **unlearning**: ModHiFi-U zeroes the top `unlearn_fraction` of one layer's (output, input) weight pairs by
  singleton fidelity on training images of `forget_class` only; the baseline zeroes as many random pairs. Test
  accuracy on the forgotten class (lower is better) and on the other classes, before and after.

Mean and standard deviation over the seeds (each seed: its own split, initialisation and calibration rows).
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from hf_margin.demo import DemoContext, DemoRow
from hf_margin.demo._threads import single_thread
from hf_margin.diagnostics.modhifi import layer_fidelity, modhifi_prune, modhifi_unlearn

ENTRY = "modhifi"
DATASET = "sklearn digits (MLP)"
PRUNED = ("2", "4")  # the linear layers whose inputs (the hidden neurons) are pruned
PRUNERS = ("ModHiFi-P", "magnitude", "magnitude + delta*")
UNLEARNERS = ("ModHiFi-U", "random pairs")


@dataclass(frozen=True)
class ModHiFiSetup:
    """Budget of the demo.

    Args:
        seeds: one trained classifier per seed (split, initialisation, calibration rows).
        hidden: width of the two hidden layers.
        steps: full-batch Adam steps (learning rate 1e-2).
        test_rows: held-out rows.
        calibration_rows: training rows ModHiFi collects its statistics on.
        sparsities: shares of the hidden neurons removed.
        step_fraction: share of the remaining neurons removed per ModHiFi step.
        forget_class: the digit to unlearn.
        unlearn_fraction: share of the edited layer's weight pairs changed by ModHiFi-U (and the random baseline).
        unlearn_layer: the linear layer edited for unlearning: "4" (the last), "2" or "0".
    """

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    hidden: int = 128
    steps: int = 300
    test_rows: int = 500
    calibration_rows: int = 200
    sparsities: tuple[float, ...] = (0.5, 0.75, 0.875, 0.9375)
    step_fraction: float = 0.2
    forget_class: int = 0
    unlearn_fraction: float = 0.05
    unlearn_layer: str = "4"


Data = dict[str, torch.Tensor]


def load_split(seed: int, test_rows: int) -> Data:
    """sklearn digits scaled to [0, 1], shuffled by `seed`; the last `test_rows` rows are the test set."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = torch.randperm(len(digits.target), generator=torch.Generator().manual_seed(seed))
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)[order]
    y = torch.as_tensor(digits.target)[order]
    cut = len(y) - test_rows
    return {"train_x": x[:cut], "train_y": y[:cut], "test_x": x[cut:], "test_y": y[cut:]}


def train_classifier(data: Data, hidden: int, steps: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(data["train_x"]), data["train_y"]).backward()
        optimizer.step()
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def magnitude_keep(layer: nn.Linear, sparsity: float) -> torch.Tensor:
    """(inputs,) keep mask without the `sparsity` share of inputs with the smallest weight-column norm."""
    keep = torch.ones(layer.weight.shape[1], dtype=torch.bool)
    keep[layer.weight.detach().norm(dim=0).argsort()[: round(sparsity * len(keep))]] = False
    return keep


def prune(model: nn.Module, method: str, sparsity: float, calibration: list[torch.Tensor], setup: ModHiFiSetup) -> None:
    """Prune `model` in place with one of PRUNERS."""
    if method == "ModHiFi-P":
        modhifi_prune(model, calibration, PRUNED, sparsity=sparsity, step_fraction=setup.step_fraction)
        return
    for name in PRUNED:
        layer = model.get_submodule(name)
        assert isinstance(layer, nn.Linear)
        keep = magnitude_keep(layer, sparsity)
        if method == "magnitude":
            scale = keep.float().expand_as(layer.weight)
        else:  # magnitude selection, ModHiFi's least-squares compensation
            scale = layer_fidelity(model, calibration, [name])[name].compensation(keep).float()
        with torch.no_grad():
            layer.weight.mul_(scale)


def unlearn(model: nn.Module, method: str, forget: list[torch.Tensor], setup: ModHiFiSetup, seed: int) -> None:
    """Edit `setup.unlearn_layer` in place with one of UNLEARNERS."""
    if method == "ModHiFi-U":
        modhifi_unlearn(model, forget, [setup.unlearn_layer], fraction=setup.unlearn_fraction)
        return
    layer = model.get_submodule(setup.unlearn_layer)
    assert isinstance(layer, nn.Linear)
    weight = layer.weight
    count = round(setup.unlearn_fraction * weight.numel())
    chosen = torch.randperm(weight.numel(), generator=torch.Generator().manual_seed(seed))[:count]
    with torch.no_grad():
        weight.view(-1)[chosen] = 0.0


def run_seed(seed: int, setup: ModHiFiSetup) -> dict[str, dict[str, float]]:
    """Every measurement of one seed: accuracies by method and sparsity, and forget / other accuracies."""
    data = load_split(seed, setup.test_rows)
    model = train_classifier(data, setup.hidden, setup.steps, seed)
    calibration = [data["train_x"][: setup.calibration_rows]]
    test_x, test_y = data["test_x"], data["test_y"]
    forgotten = test_y == setup.forget_class
    results: dict[str, dict[str, float]] = {"unpruned": {"accuracy": accuracy(model, test_x, test_y)}}
    for method in PRUNERS:
        for sparsity in setup.sparsities:
            pruned = copy.deepcopy(model)
            prune(pruned, method, sparsity, calibration, setup)
            results.setdefault(method, {})[str(sparsity)] = accuracy(pruned, test_x, test_y)

    def split_accuracy(m: nn.Module) -> dict[str, float]:
        return {
            "forget": accuracy(m, test_x[forgotten], test_y[forgotten]),
            "other": accuracy(m, test_x[~forgotten], test_y[~forgotten]),
        }

    results["before unlearning"] = split_accuracy(model)
    forget = [data["train_x"][data["train_y"] == setup.forget_class][: setup.calibration_rows]]
    for method in UNLEARNERS:
        edited = copy.deepcopy(model)
        unlearn(edited, method, forget, setup, seed)
        results[method] = split_accuracy(edited)
    return results


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, tuple[float, float]]]:
    """(mean, std) over the seeds of every measurement."""
    return {group: {key: _mean_std([run[group][key] for run in runs]) for key in runs[0][group]} for group in runs[0]}


def plot_summary(summary: dict[str, dict[str, tuple[float, float]]], setup: ModHiFiSetup, path: Path) -> None:
    """Left: test accuracy against sparsity (mean +- std). Right: forget / other accuracy before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for method, marker in zip(PRUNERS, ("o", "s", "^"), strict=True):
        means, stds = zip(*(summary[method][str(s)] for s in setup.sparsities), strict=True)
        left.errorbar(setup.sparsities, means, yerr=stds, marker=marker, capsize=3, label=method)
    left.axhline(summary["unpruned"]["accuracy"][0], color="grey", linestyle="--", label="unpruned")
    left.set(xlabel="share of hidden neurons removed", ylabel="test accuracy", ylim=(0, 1.02))
    left.set_title(f"pruning, no fine-tuning ({len(setup.seeds)} seeds)")
    left.legend(loc="lower left")
    groups = ("before unlearning", *UNLEARNERS)
    for offset, part in zip((-0.2, 0.2), ("forget", "other"), strict=True):
        means, stds = zip(*(summary[g][part] for g in groups), strict=True)
        label = f"digit {setup.forget_class} (forgotten)" if part == "forget" else "other digits"
        right.bar([i + offset for i in range(len(groups))], means, yerr=stds, width=0.4, capsize=3, label=label)
    right.set_xticks(range(len(groups)), groups)
    right.set(ylabel="test accuracy", ylim=(0, 1.25))
    right.set_title(f"unlearning: {setup.unlearn_fraction:.0%} of layer {setup.unlearn_layer}'s weights")
    right.legend(loc="upper center", ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _rows(summary: dict[str, dict[str, tuple[float, float]]], setup: ModHiFiSetup, seconds: float) -> list[DemoRow]:
    def note(group: str, key: str) -> str:
        return f"{summary[group][key][0]:.3f} +- {summary[group][key][1]:.3f}"

    rows = []
    for s in map(str, setup.sparsities):
        (ours, _), (base, _) = summary["ModHiFi-P"][s], summary["magnitude"][s]
        notes = f"mean over seeds; ModHiFi-P {note('ModHiFi-P', s)}, magnitude {note('magnitude', s)}, "
        notes += f"magnitude + delta* {note('magnitude + delta*', s)}; unpruned {note('unpruned', 'accuracy')}"
        rows.append(
            DemoRow(ENTRY, "ModHiFi-P", "magnitude", f"accuracy at sparsity {s}", ours, base, seconds, DATASET, notes)
        )
    metrics: tuple[tuple[str, Callable[[str], str]], ...] = (
        ("forget", lambda _: f"accuracy on digit {setup.forget_class} (lower is better)"),
        ("other", lambda _: "accuracy on the other digits"),
    )
    for part, metric in metrics:
        notes = f"before {note('before unlearning', part)}; ModHiFi-U {note('ModHiFi-U', part)}, random "
        notes += note("random pairs", part)
        ours, base = summary["ModHiFi-U"][part][0], summary["random pairs"][part][0]
        rows.append(DemoRow(ENTRY, "ModHiFi-U", "random pairs", metric(part), ours, base, seconds, DATASET, notes))
    return rows


def run(context: DemoContext, setup: ModHiFiSetup = ModHiFiSetup()) -> list[DemoRow]:
    if not setup.seeds or not setup.sparsities:
        raise ValueError("`seeds` and `sparsities` must each hold at least one value")
    if setup.unlearn_layer not in ("0", "2", "4"):
        raise ValueError(f"`unlearn_layer` must be '0', '2' or '4' (a linear layer), got {setup.unlearn_layer!r}")
    start = time.perf_counter()
    with single_thread():
        runs = [run_seed(seed, setup) for seed in context.progress(setup.seeds, desc="modhifi demo", leave=False)]
    seconds = time.perf_counter() - start
    summary = summarise(runs)
    context.out_dir.mkdir(parents=True, exist_ok=True)
    report = {"setup": asdict(setup), "runs": runs, "summary": summary, "seconds": seconds}
    (context.out_dir / "modhifi.json").write_text(json.dumps(report, indent=2))
    plot_summary(summary, setup, context.out_dir / "modhifi.png")
    return _rows(summary, setup, seconds)
