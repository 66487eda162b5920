"""ModHiFi's subset fidelity (arXiv 2511.19566): the spec's numbers, least squares on sampled components, limits."""

from __future__ import annotations

import itertools

import pytest
import torch

from hf_margin.functional import component_similarity, optimal_compensation, singleton_fidelity, subset_fidelity

Q = torch.tensor([[4.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]], dtype=torch.float64)


def _mask(*kept: int, n: int = 3) -> torch.Tensor:
    return torch.tensor([i in kept for i in range(n)])


def _random_psd(n: int, seed: int, rank: int | None = None) -> torch.Tensor:
    a = torch.randn(rank or n + 2, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a.T @ a


def test_the_spec_numeric_example() -> None:
    assert torch.allclose(singleton_fidelity(Q), torch.tensor([0.625, 0.6125, 0.225], dtype=torch.float64))
    expected = {(0, 1): 0.914286, (0, 2): 0.85, (1, 2): 0.657143, (0, 1, 2): 1.0}
    for kept, value in expected.items():
        assert float(subset_fidelity(Q, _mask(*kept), ridge=0.0)) == pytest.approx(value, abs=1e-6)
        assert float(subset_fidelity(Q, _mask(*kept))) == pytest.approx(value, abs=1e-4)  # the paper's ridge 1e-4
    delta = optimal_compensation(Q, _mask(0, 1), ridge=0.0)
    assert torch.allclose(delta, torch.tensor([0.928571, 1.285714, 0.0], dtype=torch.float64), atol=1e-6)
    delta = optimal_compensation(Q, _mask(0, 2), ridge=0.0)
    assert torch.allclose(delta, torch.tensor([1.25, 0.0, 1.5], dtype=torch.float64))
    # NAIVE top-2 singletons {0, 1} is also the best 2-subset here
    best = max(itertools.combinations(range(3), 2), key=lambda c: float(subset_fidelity(Q, _mask(*c), ridge=0.0)))
    assert best == (0, 1)


def test_diagonal_similarity_is_additive_and_naive_selection_is_optimal() -> None:
    q = torch.diag(torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64))
    assert torch.allclose(singleton_fidelity(q), torch.tensor([4, 2, 1], dtype=torch.float64) / 7)
    assert float(subset_fidelity(q, _mask(0, 1), ridge=0.0)) == pytest.approx(6 / 7)
    d = torch.rand(6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.1
    q = torch.diag(d)
    scores = singleton_fidelity(q)
    for k in (1, 2, 3, 4):
        naive = _mask(*scores.topk(k).indices.tolist(), n=6)
        best = max(float(subset_fidelity(q, _mask(*c, n=6), ridge=0.0)) for c in itertools.combinations(range(6), k))
        assert float(subset_fidelity(q, naive, ridge=0.0)) == pytest.approx(best)
        assert float(subset_fidelity(q, naive, ridge=0.0)) == pytest.approx(float(scores[naive].sum()))


def test_compensation_is_least_squares_on_sampled_components() -> None:
    """delta* and FS equal a direct least-squares fit of Y = sum_i A_i on the kept A_i (Monte-Carlo data)."""
    gen = torch.Generator().manual_seed(1)
    mixing = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    components = torch.randn(4000, 5, generator=gen, dtype=torch.float64) @ mixing  # correlated A_i
    target = components.sum(1)
    q = components.T @ components / len(components)
    for kept in ((0, 2, 3), (1,), (0, 1, 2, 4)):
        keep = _mask(*kept, n=5)
        fit = torch.linalg.lstsq(components[:, keep], target[:, None]).solution.squeeze(1)
        delta = optimal_compensation(q, keep, ridge=0.0)
        assert torch.allclose(delta[keep], fit, atol=1e-8) and bool((delta[~keep] == 0).all())
        residual = target - components[:, keep] @ fit
        direct = 1 - residual.square().mean() / target.square().mean()
        assert float(subset_fidelity(q, keep, ridge=0.0)) == pytest.approx(float(direct), abs=1e-10)


def test_fidelity_is_in_unit_interval_monotone_and_matches_singletons() -> None:
    for seed in range(5):
        q = _random_psd(6, seed)
        for kept in itertools.chain.from_iterable(itertools.combinations(range(6), k) for k in range(1, 6)):
            fs = float(subset_fidelity(q, _mask(*kept, n=6), ridge=0.0))
            assert -1e-12 <= fs <= 1 + 1e-12
            for smaller in itertools.combinations(kept, len(kept) - 1):
                assert float(subset_fidelity(q, _mask(*smaller, n=6), ridge=0.0)) <= fs + 1e-12
        singles = torch.stack([subset_fidelity(q, _mask(i, n=6), ridge=0.0) for i in range(6)])
        assert torch.allclose(singleton_fidelity(q), singles)


def test_keeping_everything_gives_fidelity_one_and_unit_compensation() -> None:
    q = _random_psd(5, 3).expand(4, 5, 5)
    everything = torch.ones(5, dtype=torch.bool)
    assert torch.allclose(subset_fidelity(q, everything), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(optimal_compensation(q, everything), torch.ones(4, 5, dtype=torch.float64))
    assert torch.allclose(subset_fidelity(q, torch.zeros(5, dtype=torch.bool)), torch.zeros(4, dtype=torch.float64))


def test_invariant_to_a_common_rescaling_of_the_components() -> None:
    q, keep = _random_psd(5, 4), _mask(0, 3, n=5)
    for factor in (1e-3, 7.0, 1e4):
        scaled = q * factor**2  # every A_ci times `factor`
        assert float(subset_fidelity(scaled, keep, ridge=0.0)) == pytest.approx(float(subset_fidelity(q, keep, 0.0)))
        assert torch.allclose(singleton_fidelity(scaled), singleton_fidelity(q))
        assert torch.allclose(optimal_compensation(scaled, keep, 0.0), optimal_compensation(q, keep, 0.0))


def test_per_output_subsets_equal_one_subset_at_a_time() -> None:
    q = torch.stack([_random_psd(4, s) for s in range(3)])
    keep = torch.tensor([[True, False, True, True], [False, True, True, False], [True, True, True, True]])
    together = optimal_compensation(q, keep)
    for c in range(3):
        assert torch.allclose(together[c], optimal_compensation(q[c], keep[c]), atol=1e-10)
    assert torch.allclose(subset_fidelity(q, keep), torch.stack([subset_fidelity(q[c], keep[c]) for c in range(3)]))


def test_collinear_components_with_ridge_zero_give_the_minimum_norm_fit() -> None:
    q = torch.ones(3, 3, dtype=torch.float64)  # three identical components
    delta = optimal_compensation(q, _mask(0, 1), ridge=0.0)
    assert torch.allclose(delta, torch.tensor([1.5, 1.5, 0.0], dtype=torch.float64))
    assert float(subset_fidelity(q, _mask(0, 1), ridge=0.0)) == pytest.approx(1.0)


def test_component_similarity_of_a_linear_layer_equals_sampled_inner_products() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(300, 4, generator=gen, dtype=torch.float64)
    weight = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    q = component_similarity(weight, x.T @ x / len(x))
    components = x[:, None, :] * weight[None]  # (examples, outputs, inputs): A_ci = x_i W_ci
    direct = torch.einsum("nci,ncj->cij", components, components) / len(x)
    assert torch.allclose(q, direct)


def test_component_similarity_of_a_convolution_equals_frobenius_products_of_the_maps() -> None:
    gen = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv2d(3, 2, kernel_size=3, padding=1, stride=2, bias=False).double()
    x = torch.randn(10, 3, 7, 7, generator=gen, dtype=torch.float64)
    patches = torch.nn.functional.unfold(x, 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 27)
    q = component_similarity(conv.weight.detach(), patches.T @ patches / len(x))
    maps = torch.stack(
        [torch.nn.functional.conv2d(x[:, i : i + 1], conv.weight[:, i : i + 1], padding=1, stride=2) for i in range(3)],
        dim=2,
    ).detach()  # (examples, outputs, inputs, h, w)
    direct = torch.einsum("ncihw,ncjhw->cij", maps, maps) / len(x)
    assert torch.allclose(q, direct)


def test_gradcheck_float64() -> None:
    a = torch.randn(3, 4, 4, dtype=torch.float64)
    q = (a @ a.transpose(1, 2) + torch.eye(4, dtype=torch.float64)).requires_grad_()
    keep_1d, keep_2d = _mask(0, 2, n=4), torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]], dtype=torch.bool)
    assert torch.autograd.gradcheck(singleton_fidelity, (q,))
    for keep in (keep_1d, keep_2d):
        assert torch.autograd.gradcheck(lambda s, k=keep: subset_fidelity(s, k), (q,))
        assert torch.autograd.gradcheck(lambda s, k=keep: optimal_compensation(s, k, ridge=0.0), (q,))
    weight = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    moment = (torch.eye(6, dtype=torch.float64) + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(component_similarity, (weight, moment))


def test_bf16_autocast_and_half_inputs_compute_in_float32() -> None:
    q = _random_psd(4, 5).float()
    keep = _mask(1, 2, n=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for half in (q.bfloat16(), q.half()):
            fs = subset_fidelity(half, keep)
            assert fs.dtype == torch.float32 and float(fs) == pytest.approx(float(subset_fidelity(q, keep)), rel=2e-2)
            assert singleton_fidelity(half).dtype == torch.float32
        weight = torch.randn(2, 4, requires_grad=True)
        out = component_similarity(weight.bfloat16(), torch.eye(4).bfloat16())
    assert out.dtype == torch.float32
    out.sum().backward()
    assert weight.grad is not None and bool(torch.isfinite(weight.grad).all())


def test_extreme_but_finite_and_zero_inputs_stay_finite() -> None:
    q = _random_psd(4, 6)
    keep = _mask(0, 1, n=4)
    for factor in (1e-30, 1e30):
        assert bool(torch.isfinite(subset_fidelity(q * factor, keep, ridge=0.0)))
        assert bool(torch.isfinite(singleton_fidelity(q * factor)).all())
    zero = torch.zeros(4, 4)
    assert torch.equal(singleton_fidelity(zero), torch.zeros(4))  # no output to reproduce: nothing scores
    assert float(subset_fidelity(zero, keep)) == 0.0
    dead = torch.diag(torch.tensor([1.0, 0.0, 2.0, 1.0]))
    assert float(singleton_fidelity(dead)[1]) == 0.0  # a component that is always zero
    assert bool(torch.isfinite(optimal_compensation(dead, _mask(1, 2, n=4))).all())


def test_nan_propagates() -> None:
    q = _random_psd(3, 7)
    q[0, 1] = q[1, 0] = float("nan")
    assert bool(torch.isnan(subset_fidelity(q, _mask(0, 1))))
    assert bool(torch.isnan(singleton_fidelity(q)).any())


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: subset_fidelity([[1.0]], torch.tensor([True])), TypeError, "similarity"),
        (lambda: subset_fidelity(torch.eye(3).long(), _mask(0)), TypeError, "similarity"),
        (lambda: subset_fidelity(torch.ones(3, 2), _mask(0)), ValueError, "similarity"),
        (lambda: subset_fidelity(torch.ones(3), _mask(0)), ValueError, "similarity"),
        (lambda: subset_fidelity(torch.eye(3), torch.ones(3)), TypeError, "keep"),
        (lambda: subset_fidelity(torch.eye(3), _mask(0, n=4)), ValueError, "keep"),
        (lambda: subset_fidelity(torch.eye(3), torch.ones(2, 3, dtype=torch.bool)), ValueError, "keep"),
        (lambda: subset_fidelity(torch.eye(3), _mask(0), ridge=-1e-4), ValueError, "ridge"),
        (lambda: subset_fidelity(torch.eye(3), _mask(0), ridge=float("nan")), ValueError, "ridge"),
        (lambda: optimal_compensation(torch.eye(3), _mask(0), ridge="0.1"), TypeError, "ridge"),
        (lambda: singleton_fidelity(torch.eye(3)[None, :2]), ValueError, "similarity"),
        (lambda: component_similarity(torch.ones(2, 3), torch.eye(4)), ValueError, "input_moment"),
        (lambda: component_similarity(torch.ones(2), torch.eye(2)), ValueError, "weight"),
        (lambda: component_similarity(torch.ones(2, 3).long(), torch.eye(3)), TypeError, "weight"),
        (lambda: component_similarity(torch.ones(2, 3), "eye"), TypeError, "input_moment"),
    ],
)
def test_bad_inputs_name_the_argument(call: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()  # type: ignore[operator]
