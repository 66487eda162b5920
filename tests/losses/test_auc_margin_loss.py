"""AUCMarginLoss: gradient reversal on alpha, projection alpha >= 0, and the min-max game under plain optimizers."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

from hf_margin.functional.auc_margin import auc_margin_loss, auc_margin_saddle
from hf_margin.losses.auc_margin import AUCMarginLoss, reverse_gradient

LABELS = torch.tensor([1, 0, 0, 1, 0, 0, 0, 0, 1, 0])


def fixed_scores(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.05 + 0.9 * torch.rand(10, generator=g)


def set_params(loss: Any, a: float, b: float, alpha: float) -> None:
    with torch.no_grad():
        loss.a.fill_(a)
        loss.b.fill_(b)
        loss.alpha.fill_(alpha)


def test_parameters_start_at_zero() -> None:
    loss = AUCMarginLoss()
    names = dict(loss.named_parameters())
    assert set(names) == {"a", "b", "alpha"}
    for p in names.values():
        assert p.shape == (1,) and p.item() == 0.0
    assert set(loss.state_dict()) == {"a", "b", "alpha"}


def test_reverse_gradient_is_identity_forward_negated_backward() -> None:
    x = torch.tensor([0.5, -2.0], requires_grad=True)
    y = reverse_gradient(x)
    torch.testing.assert_close(y, x)
    (y * torch.tensor([3.0, 4.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-3.0, -4.0]))


@pytest.mark.parametrize(("version", "compat"), [("v1", False), ("v2", False), ("v2", True)])
def test_value_equals_functional_and_alpha_gradient_is_reversed(version: str, compat: bool) -> None:
    loss_fn = AUCMarginLoss(margin=0.8, version=version, libauc_compat=compat, score_type="logits")
    set_params(loss_fn, 0.4, 0.2, 0.3)
    logits = torch.logit(fixed_scores(1))
    value = loss_fn(logits, LABELS)
    value.backward()
    a, b, alpha = (torch.tensor([v], requires_grad=True) for v in (0.4, 0.2, 0.3))
    ref = auc_margin_loss(
        logits, LABELS, a, b, alpha, margin=0.8, version=version, libauc_compat=compat, score_type="logits"
    )
    ref.backward()
    torch.testing.assert_close(value, ref)
    torch.testing.assert_close(loss_fn.a.grad, a.grad)
    torch.testing.assert_close(loss_fn.b.grad, b.grad)
    assert alpha.grad is not None
    torch.testing.assert_close(loss_fn.alpha.grad, -alpha.grad)


@pytest.mark.parametrize(("version", "imratio", "auto"), [("v1", None, True), ("v1", 0.2, False), ("v2", None, True)])
def test_matches_libauc_module_up_to_the_reversed_alpha_gradient(
    version: str, imratio: float | None, auto: bool
) -> None:
    libauc_losses = pytest.importorskip("libauc.losses")
    ref_fn = libauc_losses.AUCMLoss(margin=1.0, imratio=imratio, version=version, device="cpu")
    ours_fn = AUCMarginLoss(margin=1.0, imratio=imratio, version=version, libauc_compat=True)
    for fn in (ref_fn, ours_fn):
        set_params(fn, 0.3, 0.1, 0.7)
    scores = fixed_scores(2)
    ref_scores, ours_scores = scores.clone().requires_grad_(), scores.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ref_fn(ref_scores.unsqueeze(1), LABELS, auto=auto)
    ref.sum().backward()
    ours = ours_fn(ours_scores, LABELS)
    ours.backward()
    torch.testing.assert_close(ours, ref.reshape(()))
    torch.testing.assert_close(ours_scores.grad, ref_scores.grad)
    torch.testing.assert_close(ours_fn.a.grad, ref_fn.a.grad)
    torch.testing.assert_close(ours_fn.b.grad, ref_fn.b.grad)
    torch.testing.assert_close(ours_fn.alpha.grad, -ref_fn.alpha.grad)


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("separated", [False, True])
def test_sgd_with_reversal_and_projection_converges_to_the_saddle(version: str, separated: bool) -> None:
    scores = fixed_scores(3).double()
    margin = 1.0
    if separated:  # alpha* = 0: the ascent direction keeps pushing alpha below 0, the projection holds it there
        scores, margin = torch.where(LABELS == 1, 0.6 + 0.4 * scores, 0.4 * scores), 0.2
    loss_fn = AUCMarginLoss(margin=margin, version=version).double()
    optimizer = torch.optim.SGD(loss_fn.parameters(), lr=0.3)
    loss_fn.attach_projection(optimizer)
    for _ in range(300):
        optimizer.zero_grad()
        loss_fn(scores, LABELS).backward()
        optimizer.step()
        assert loss_fn.alpha.item() >= 0.0
    saddle = auc_margin_saddle(scores, LABELS, margin=margin)
    assert (float(saddle.alpha) == 0.0) == separated
    for param, target in ((loss_fn.a, saddle.a), (loss_fn.b, saddle.b), (loss_fn.alpha, saddle.alpha)):
        assert param.item() == pytest.approx(float(target), abs=1e-3)


def test_adam_step_moves_alpha_up_the_loss() -> None:
    loss_fn = AUCMarginLoss()
    optimizer = torch.optim.Adam(loss_fn.parameters(), lr=0.01)
    loss_fn(fixed_scores(4), LABELS).backward()  # dF/dalpha = 2 p(1-p) (m - E[h|+] + E[h|-]) > 0 at alpha = 0
    optimizer.step()
    assert loss_fn.alpha.item() == pytest.approx(0.01, rel=1e-3)


def test_projection_hook_keeps_alpha_non_negative() -> None:
    scores = torch.tensor([0.95, 0.1, 0.05, 0.9, 0.2, 0.1, 0.0, 0.15, 1.0, 0.05])  # positives >= 0.7 above negatives
    loss_fn = AUCMarginLoss(margin=0.5)
    optimizer = torch.optim.SGD(loss_fn.parameters(), lr=1.0)

    def step() -> None:
        optimizer.zero_grad()
        loss_fn(scores, LABELS).backward()
        optimizer.step()

    step()
    assert loss_fn.alpha.item() < 0, "without the projection the ascent step leaves the feasible set"
    loss_fn.project_()
    assert loss_fn.alpha.item() == 0.0
    handle = loss_fn.attach_projection(optimizer)
    step()
    assert loss_fn.alpha.item() == 0.0
    handle.remove()
    step()
    assert loss_fn.alpha.item() < 0


def test_trains_a_linear_scorer_towards_higher_auc() -> None:
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(200, generator=g) < 0.2).long()
    x = torch.randn(200, 2, generator=g) + labels.unsqueeze(1) * torch.tensor([1.0, -1.0])
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 1.0]]))  # start with the ranking reversed
    loss_fn = AUCMarginLoss(score_type="logits")
    optimizer = torch.optim.SGD(list(model.parameters()) + list(loss_fn.parameters()), lr=0.5)
    loss_fn.attach_projection(optimizer)

    def auc() -> float:
        with torch.no_grad():
            s = model(x).squeeze(1)
        pos, neg = s[labels == 1], s[labels == 0]
        return float((pos.unsqueeze(1) > neg.unsqueeze(0)).double().mean())

    before = auc()
    for _ in range(150):
        optimizer.zero_grad()
        loss_fn(model(x), labels).backward()
        optimizer.step()
    assert before < 0.3 and auc() > 0.8
    assert loss_fn.alpha.item() > 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"version": "v3"}, "`version`"),
        ({"imratio": 0.0}, "`imratio`"),
        ({"imratio": 1.2}, "`imratio`"),
        ({"imratio": 0.3, "version": "v2"}, "`imratio`"),
        ({"score_type": "sigmoid"}, "`score_type`"),
        ({"margin": -0.1}, "`margin`"),
    ],
)
def test_constructor_errors_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AUCMarginLoss(**kwargs)  # type: ignore[arg-type]


def test_forward_errors_name_the_argument() -> None:
    loss_fn = AUCMarginLoss()
    with pytest.raises(ValueError, match="`labels`"):
        loss_fn(torch.rand(4), torch.tensor([1, -1, 1, -1]))
    with pytest.raises(ValueError, match="`labels`"):
        loss_fn(torch.rand(4), torch.tensor([1, 0, 1]))
