"""ModHiFi on torch layers (arXiv 2511.19566): statistics by hooks, pruning = least squares, unlearning, bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from hf_margin.diagnostics import layer_fidelity, modhifi_prune, modhifi_unlearn
from hf_margin.functional import subset_fidelity


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).double()


def _data(rows: int = 256, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x = torch.randn(rows, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return [(x[:100], torch.zeros(100)), (x[100:], torch.zeros(rows - 100))]


def _hidden(model: nn.Sequential, data: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model[1](model[0](x)) for x, _ in data])


def test_statistics_of_a_linear_layer_are_the_input_second_moment() -> None:
    model, data = _mlp(), _data()
    model.train()
    stats = layer_fidelity(model, data, ["2"])["2"]
    hidden = _hidden(model, data)
    assert torch.allclose(stats.input_moment, hidden.T @ hidden / len(hidden))
    assert torch.allclose(stats.input_mean, hidden.mean(0))
    assert stats.examples == 256 and stats.positions == 1.0
    assert model.training and not model[2]._forward_hooks  # mode restored, hooks removed
    assert torch.allclose(stats.fidelity(torch.ones(8, dtype=torch.bool)), torch.ones(3, dtype=torch.float64))


def test_pruning_with_ridge_zero_is_the_least_squares_refit_of_each_output() -> None:
    model, data = _mlp(), _data()
    original = copy.deepcopy(model)
    keep = modhifi_prune(model, data, ["2"], sparsity=0.5, step_fraction=1.0, ridge=0.0)["2"]
    assert int(keep.sum()) == 4 and bool((model[2].weight[:, ~keep] == 0).all())
    hidden = _hidden(original, data)
    target = hidden @ original[2].weight.detach().T  # Y_c without the bias
    fit = torch.linalg.lstsq(hidden[:, keep], target).solution  # (kept, outputs)
    with torch.no_grad():
        assert torch.allclose(model(torch.cat([x for x, _ in data])), hidden[:, keep] @ fit + model[2].bias, atol=1e-8)
    assert torch.equal(model[2].bias, original[2].bias)


def test_centred_pruning_keeps_the_mean_output_through_the_bias() -> None:
    model, data = _mlp(), _data()
    original = copy.deepcopy(model)
    modhifi_prune(model, data, ["2"], sparsity=0.6, centre=True)
    x = torch.cat([x for x, _ in data])
    with torch.no_grad():
        assert torch.allclose(model(x).mean(0), original(x).mean(0), atol=1e-6)
        centred = original(x) - original(x).mean(0)
        error = (model(x) - original(x)).square().sum(0)
    assert bool((error < centred.square().sum(0)).all())  # better than predicting the mean


def test_iterative_steps_reach_the_sparsity_and_beat_dropping_without_compensation() -> None:
    model, data = _mlp(), _data()
    original = copy.deepcopy(model)
    keep = modhifi_prune(model, data, ["0", "2"], sparsity=0.4, step_fraction=0.1)
    assert [int(k.sum()) for k in keep.values()] == [3, 5]
    stats = layer_fidelity(original, data, ["2"])["2"]
    dropped = copy.deepcopy(original)
    with torch.no_grad():  # the same inputs removed, no compensation
        dropped[0].weight[:, ~keep["0"]] = 0
        dropped[2].weight[:, ~keep["2"]] = 0
    assert bool((stats.fidelity(keep["2"]) <= 1).all())
    x = torch.cat([x for x, _ in data])
    with torch.no_grad():
        ours, baseline = (model(x) - original(x)).square().mean(), (dropped(x) - original(x)).square().mean()
    assert float(ours) < float(baseline)


def test_keeping_everything_leaves_the_model_unchanged() -> None:
    model, data = _mlp(), _data()
    original = copy.deepcopy(model)
    keep = modhifi_prune(model, data, ["2"], sparsity=0.01)["2"]  # round(0.08) = 0 inputs removed
    assert bool(keep.all())
    for p, q in zip(model.parameters(), original.parameters(), strict=True):
        assert torch.equal(p, q)


def test_convolution_statistics_and_pruning() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, kernel_size=3, padding=1, stride=2, bias=False).double()
    model = nn.Sequential(conv)
    x = torch.randn(12, 3, 6, 6, dtype=torch.float64)
    stats = layer_fidelity(model, [x], ["0"])["0"]
    maps = torch.stack(
        [nn.functional.conv2d(x[:, i : i + 1], conv.weight[:, i : i + 1], padding=1, stride=2) for i in range(3)], 2
    ).detach()
    assert torch.allclose(stats.similarity, torch.einsum("ncihw,ncjhw->cij", maps, maps) / 12)
    assert stats.positions == 9.0
    similarity = stats.similarity  # of the weights before pruning
    original = conv(x).detach()
    kept = modhifi_prune(model, [x], ["0"], sparsity=1 / 3, step_fraction=1.0)["0"]
    assert int(kept.sum()) == 2 and bool((conv.weight[:, ~kept] == 0).all())
    error = (conv(x).detach() - original).square().sum((0, 2, 3))
    fidelity = 1 - error / original.square().sum((0, 2, 3))  # measured on the calibration data
    assert torch.allclose(fidelity, subset_fidelity(similarity, kept), atol=1e-5)


def test_unlearning_zeroes_or_negates_the_top_pairs() -> None:
    model, data = _mlp(), _data()
    original = copy.deepcopy(model)
    scores = layer_fidelity(model, data, ["2"])["2"].singleton_scores()
    edited = modhifi_unlearn(model, data, ["2"], fraction=0.25)["2"]
    assert int(edited.sum()) == 6  # 0.25 of 3 x 8 pairs
    assert float(scores[edited].min()) >= float(scores[~edited].max())
    assert bool((model[2].weight[edited] == 0).all())
    assert torch.equal(model[2].weight[~edited], original[2].weight[~edited])
    negated = copy.deepcopy(original)
    modhifi_unlearn(negated, data, ["2"], fraction=0.25, mode="negate")
    assert torch.equal(negated[2].weight[edited], -original[2].weight[edited])


def test_mapping_batches_and_a_custom_forward() -> None:
    model, data = _mlp(), _data()
    by_tuple = layer_fidelity(model, data, ["2"])["2"].input_moment
    mapping = [{"x": x, "labels": y} for x, y in data]
    by_forward = layer_fidelity(model, mapping, ["2"], forward=lambda m, b: m(b["x"]))["2"].input_moment
    assert torch.allclose(by_tuple, by_forward)
    assert layer_fidelity(model, data, ["2"], max_batches=1)["2"].examples == 100


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m, d: layer_fidelity(m, d, ["1"]), TypeError, "layers"),  # a ReLU
        (lambda m, d: layer_fidelity(m, d, "2"), TypeError, "layers"),
        (lambda m, d: layer_fidelity(m, d, ["9"]), ValueError, "layers"),
        (lambda m, d: layer_fidelity("model", d, ["2"]), TypeError, "model"),
        (lambda m, d: layer_fidelity(m, [], ["2"]), ValueError, "data"),
        (lambda m, d: layer_fidelity(m, d, ["2"], centre="yes"), TypeError, "centre"),
        (lambda m, d: layer_fidelity(m, d, ["2"], max_batches=0), ValueError, "max_batches"),
        (lambda m, d: layer_fidelity(m, ["text"], ["2"]), TypeError, "data"),
        (lambda m, d: modhifi_prune(m, d, ["2"], sparsity=0.0), ValueError, "sparsity"),
        (lambda m, d: modhifi_prune(m, d, ["2"], sparsity=1.0), ValueError, "sparsity"),
        (lambda m, d: modhifi_prune(m, d, ["2"], sparsity=-0.5), ValueError, "sparsity"),
        (lambda m, d: modhifi_prune(m, d, ["2"], sparsity="0.5"), TypeError, "sparsity"),
        (lambda m, d: modhifi_prune(m, d, ["2"], sparsity=0.5, step_fraction=1.5), ValueError, "step_fraction"),
        (lambda m, d: modhifi_prune(m, d, ["2"], sparsity=0.5, ridge=-1e-4), ValueError, "ridge"),
        (lambda m, d: modhifi_prune(m, d, ["2"], sparsity=0.5, ridge=float("nan")), ValueError, "ridge"),
        (lambda m, d: modhifi_unlearn(m, d, ["2"], fraction=1.0), ValueError, "fraction"),
        (lambda m, d: modhifi_unlearn(m, d, ["2"], fraction=0.1, mode="flip"), ValueError, "mode"),
    ],
)
def test_bad_arguments_name_themselves_and_leave_the_weights_alone(call: object, error: type, match: str) -> None:
    model, data = _mlp(), _data()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(error, match=match):
        call(model, data)  # type: ignore[operator]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_unsupported_layers_are_rejected() -> None:
    for layer, error in (
        (nn.Conv1d(2, 2, 3), TypeError),
        (nn.Conv2d(4, 4, 3, groups=2), ValueError),
        (nn.Conv2d(2, 2, 3, padding_mode="reflect"), ValueError),
        (nn.Conv2d(2, 2, 3, padding="same"), ValueError),
    ):
        with pytest.raises(error, match="layers"):
            layer_fidelity(nn.Sequential(layer), [torch.randn(1, 2, 5, 5)], ["0"])


def test_non_finite_calibration_data_is_refused() -> None:
    model, data = _mlp(), _data()
    data[0][0][3, 1] = float("nan")
    with pytest.raises(ValueError, match="data"):
        layer_fidelity(model, data, ["0"])
