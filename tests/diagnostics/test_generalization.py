"""Jiang et al.'s margin-based generalization measures: the margin percentile by hand, the scale behaviour of a
bias-free ReLU network, the norms by hand, path-norm, gradcheck, extreme inputs and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hf_margin.diagnostics.generalization import (
    generalization_measures,
    margin_percentile,
    output_margins,
    path_norm,
    weight_matrices,
)


def relu_net(seed: int = 0, bias: bool = False) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(5, 7, bias=bias), nn.ReLU(), nn.Linear(7, 6, bias=bias), nn.ReLU(), nn.Linear(6, 3, bias=bias)
    ).double()


def test_margins_and_10th_percentile_by_hand() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0], [1.0, 1.0, 1.0]])
    labels = torch.tensor([0, 1, 2])
    assert torch.equal(output_margins(logits, labels), torch.tensor([2.0, -3.0, 0.0]))
    # 25 examples with margins 1..25 shuffled: k = 25 // 10 = 2, the 2nd smallest margin is 2
    margins = torch.randperm(25).double() + 1
    two_class = torch.stack([torch.zeros(25, dtype=torch.float64), margins], dim=1)
    assert margin_percentile(two_class, torch.ones(25, dtype=torch.long)).item() == 2.0
    # the k-th smallest is negative (misclassified): gamma is its absolute value
    assert margin_percentile(-two_class, torch.ones(25, dtype=torch.long)).item() == 24.0
    assert margin_percentile(logits, labels).item() == 3.0, "m < 10 uses the smallest margin, |-3|"


def test_scaling_the_last_layer_scales_the_margin_and_leaves_norm_over_margin_invariant() -> None:
    net, x = relu_net(), torch.randn(40, 5, dtype=torch.float64)
    labels = net(x).argmax(1)
    before = generalization_measures(net, net(x), labels, input_shape=(5,))
    with torch.no_grad():
        net[4].weight.mul_(3.0)
    after = generalization_measures(net, net(x), labels, input_shape=(5,))
    assert after["margin"] == pytest.approx(3 * before["margin"], rel=1e-10)
    assert after["inverse_margin"] == pytest.approx(before["inverse_margin"] / 9, rel=1e-10)
    assert after["log_prod_of_spec"] == pytest.approx(before["log_prod_of_spec"] + 2 * math.log(3), rel=1e-10)
    for key in (
        "log_prod_of_spec_over_margin",
        "log_sum_of_spec_over_margin",
        "log_prod_of_fro_over_margin",
        "log_sum_of_fro_over_margin",
        "path_norm_over_margin",
    ):
        assert after[key] == pytest.approx(before[key], rel=1e-9, abs=1e-9), key
    assert after["path_norm"] == pytest.approx(9 * before["path_norm"], rel=1e-10)


def test_norm_measures_by_hand_and_init_distances() -> None:
    net = relu_net(bias=True)
    x = torch.randn(30, 5, dtype=torch.float64)
    logits, labels = net(x), torch.randint(0, 3, (30,))
    init = {k: w.detach().clone() for k, w in weight_matrices(net).items()}
    assert set(init) == {"0.weight", "2.weight", "4.weight"}, "biases are not weight matrices"
    values = generalization_measures(net, logits, labels, init)
    assert values["fro_dist"] == 0 and values["dist_spec_init"] == 0
    assert values["log_spec_init_main"] == pytest.approx(values["log_prod_of_spec_over_margin"] + math.log(1e-24)), (
        "log 0 floored, finite"
    )
    weights = [net[i].weight.detach() for i in (0, 2, 4)]
    spec = [torch.linalg.svdvals(w)[0].item() ** 2 for w in weights]
    fro = [w.pow(2).sum().item() for w in weights]
    gamma = margin_percentile(logits, labels).item()
    assert values["log_prod_of_spec_over_margin"] == pytest.approx(sum(map(math.log, spec)) - 2 * math.log(gamma))
    assert values["log_sum_of_spec_over_margin"] == pytest.approx(
        math.log(3) + (sum(map(math.log, spec)) - 2 * math.log(gamma)) / 3
    )
    assert values["fro_over_spec"] == pytest.approx(sum(f / s for f, s in zip(fro, spec, strict=True)))
    assert values["param_norm"] == pytest.approx(sum(fro))
    assert values["log_spec_orig_main"] == pytest.approx(
        values["log_prod_of_spec_over_margin"] + math.log(values["fro_over_spec"])
    )
    shifted = {k: w + 1.0 for k, w in init.items()}
    moved = generalization_measures(net, logits, labels, shifted)
    assert moved["fro_dist"] == pytest.approx(sum(w.numel() for w in weights))  # ||ones||_F^2
    assert moved["dist_spec_init"] == pytest.approx(sum(w.shape[0] * w.shape[1] for w in weights))  # ||ones||_2^2
    normalized = generalization_measures(net, logits, labels, normalize=True, num_examples=100)
    assert normalized["param_norm"] == pytest.approx(math.sqrt(values["param_norm"] / 100))
    assert normalized["log_prod_of_spec"] == pytest.approx((values["log_prod_of_spec"] - math.log(100)) / 2)
    assert normalized["margin"] == values["margin"]


def test_path_norm_of_a_linear_layer_and_identity_spectral_norm() -> None:
    layer = nn.Linear(4, 3, bias=False).double()
    assert path_norm(layer, (4,)).item() == pytest.approx(layer.weight.pow(2).sum().item())
    weight_before = layer.weight.detach().clone()
    assert torch.equal(layer.weight, weight_before), "path_norm leaves the parameters untouched"
    identity = nn.Linear(4, 4, bias=False).double()
    with torch.no_grad():
        identity.weight.copy_(torch.eye(4))
    values = generalization_measures(identity, torch.eye(4, dtype=torch.float64), torch.arange(4))
    assert values["log_prod_of_spec"] == pytest.approx(0.0, abs=1e-12)  # ||I||_2 = 1
    assert values["fro_over_spec"] == pytest.approx(4.0)


def test_gradcheck_of_the_margin_percentile() -> None:
    logits = torch.randn(12, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (12,))
    assert torch.autograd.gradcheck(lambda z: margin_percentile(z, labels), (logits,))
    assert torch.autograd.gradcheck(lambda z: output_margins(z, labels), (logits,))


def test_extreme_inputs_stay_finite() -> None:
    net = relu_net()
    equal = torch.zeros(20, 3, dtype=torch.float64)  # all-equal logits: margin 0
    values = generalization_measures(net, equal, torch.zeros(20, dtype=torch.long), input_shape=(5,))
    assert values["margin"] == pytest.approx(1e-12) and all(math.isfinite(v) for v in values.values())
    huge = torch.tensor([[1e30, -1e30, 0.0], [0.0, 1e30, -1e30]])
    assert torch.isfinite(output_margins(huge, torch.tensor([0, 1]))).all()
    assert all(math.isfinite(v) for v in generalization_measures(net, huge.double(), torch.tensor([0, 1])).values())


def test_bad_input_names_the_argument() -> None:
    net = relu_net()
    with pytest.raises(ValueError, match="`logits`"):
        output_margins(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="`labels`"):
        output_margins(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 1\]"):
        margin_percentile(torch.zeros(3, 2), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="`labels`"):
        margin_percentile(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="`input_shape`"):
        path_norm(net, (0,))
    with pytest.raises(ValueError, match="`init_weights`"):
        generalization_measures(net, torch.zeros(2, 3), torch.tensor([0, 1]), init_weights={})
    with pytest.raises(ValueError, match="`num_examples`"):
        generalization_measures(net, torch.zeros(2, 3), torch.tensor([0, 1]), num_examples=0)
    with pytest.raises(ValueError, match="weight matrices"):
        generalization_measures(nn.ReLU(), torch.zeros(2, 3), torch.tensor([0, 1]))


def test_a_diverged_model_gets_an_error_not_nan_measures() -> None:
    # issue 19 policy for evaluation-side numbers: non-finite input raises, naming it and counting the entries
    net = relu_net()
    logits, labels = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    logits[1, 2] = math.nan
    with pytest.raises(ValueError, match=r"`logits` has 1 non-finite"):
        generalization_measures(net, logits, labels)
    with torch.no_grad():
        net[0].weight[0, :2] = math.inf
    with pytest.raises(ValueError, match=r"`model.0.weight` has 2 non-finite"):
        generalization_measures(net, torch.randn(4, 3, dtype=torch.float64), labels)
    init = {k: w.detach().clone() for k, w in weight_matrices(relu_net()).items()}
    init["2.weight"][0, 0] = math.nan
    with pytest.raises(ValueError, match=r"`init_weights\['2.weight'\]` has 1 non-finite"):
        generalization_measures(relu_net(), torch.randn(4, 3, dtype=torch.float64), labels, init_weights=init)
