"""AUC-M for L labels / one-vs-rest classes (our extension, as LibAUC's MultiLabelAUCMLoss): the mean of the
per-label binary losses, class indices = one-hot labels, LibAUC 2.0.1's MultiLabelAUCMLoss, the per-label saddle,
and the module's per-label parameters."""

from __future__ import annotations

import warnings

import pytest
import torch

from hf_margin.functional.auc_margin import auc_margin_loss, auc_margin_saddle
from hf_margin.losses.auc_margin import AUCMarginLoss

CLASSES = torch.tensor([0, 1, 2, 0, 1, 2, 2, 0, 1, 2, 0, 2])


def scores(seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.05 + 0.9 * torch.rand(len(CLASSES), 3, generator=g)).to(dtype)


PARAMS = (torch.tensor([0.3, 0.5, 0.6]), torch.tensor([0.2, 0.1, 0.4]), torch.tensor([0.7, 0.0, 0.2]))


@pytest.mark.parametrize(("version", "imratio"), [("v1", None), ("v1", [0.3, 0.25, 0.4]), ("v2", None)])
def test_mean_of_the_per_label_binary_losses(version: str, imratio: list[float] | None) -> None:
    h, (a, b, alpha) = scores(), PARAMS
    one_hot = torch.nn.functional.one_hot(CLASSES, 3)
    per_label = [
        auc_margin_loss(
            h[:, k], one_hot[:, k], a[k], b[k], alpha[k], 0.8, None if imratio is None else imratio[k], version
        )
        for k in range(3)
    ]
    got = auc_margin_loss(h, CLASSES, a, b, alpha, margin=0.8, imratio=imratio, version=version)
    assert float(got) == pytest.approx(float(torch.stack(per_label).mean()), rel=1e-12)
    multi_hot = auc_margin_loss(h, one_hot, a, b, alpha, margin=0.8, imratio=imratio, version=version)
    assert float(multi_hot) == float(got)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_matches_libauc_multilabel_at_margin_one(version: str) -> None:
    libauc_losses = pytest.importorskip("libauc.losses")
    h = scores(1, torch.float32)
    labels = torch.nn.functional.one_hot(CLASSES, 3)
    reference = libauc_losses.MultiLabelAUCMLoss(margin=1.0, version=version, num_labels=3, device="cpu")
    with torch.no_grad():
        for theirs, value in zip((reference.a, reference.b, reference.alpha), PARAMS, strict=True):
            theirs.copy_(value)
    ref_scores = h.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference(ref_scores, labels)
    expected.backward()
    module = AUCMarginLoss(margin=1.0, version=version, num_labels=3)
    with torch.no_grad():
        for mine, value in zip((module.a, module.b, module.alpha), PARAMS, strict=True):
            mine.copy_(value)
    ours_scores = h.clone().requires_grad_()
    got = module(ours_scores, labels)
    got.backward()
    torch.testing.assert_close(got, expected.reshape(()))
    torch.testing.assert_close(ours_scores.grad, ref_scores.grad)
    for mine, theirs in ((module.a, reference.a), (module.b, reference.b)):
        torch.testing.assert_close(mine.grad, theirs.grad)
    # The module reverses alpha's gradient (ascent under a descent optimizer).
    torch.testing.assert_close(module.alpha.grad, -reference.alpha.grad)


def test_libauc_multilabel_v1_leaves_the_margin_out() -> None:
    """LibAUC 2.0.1's MultiLabelAUCMLoss v1 writes 2 alpha (p(1-p) + ...) where AUCMLoss has 2 alpha (p(1-p) m + ...):
    at m != 1 the two differ by 2 alpha p(1-p)(1 - m) per label. Ours keeps the margin."""
    libauc_losses = pytest.importorskip("libauc.losses")
    h = scores(2, torch.float32)
    labels = torch.nn.functional.one_hot(CLASSES, 3)
    reference = libauc_losses.MultiLabelAUCMLoss(margin=0.5, version="v1", num_labels=3, device="cpu")
    with torch.no_grad():
        reference.alpha.copy_(PARAMS[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = reference(h, labels)
    ours = auc_margin_loss(h, labels, 0.0, 0.0, PARAMS[2], margin=0.5)
    p = labels.float().mean(0)
    gap = (2 * PARAMS[2] * p * (1 - p) * (1 - 0.5)).mean()
    torch.testing.assert_close(theirs.reshape(()) - ours, gap)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_per_label_saddle_is_stationary(version: str) -> None:
    h = scores(3)
    saddle = auc_margin_saddle(h, CLASSES, margin=1.0)
    assert saddle.a.shape == (3,) and (saddle.alpha > 0).all()
    a, b, alpha = (value.clone().requires_grad_() for value in saddle)
    auc_margin_loss(h, CLASSES, a, b, alpha, margin=1.0, version=version).backward()
    for value in (a, b, alpha):
        assert value.grad is not None
        torch.testing.assert_close(value.grad, torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_gradcheck_multilabel() -> None:
    h = scores(4).requires_grad_()
    a, b, alpha = (value.double().requires_grad_() for value in PARAMS)
    assert torch.autograd.gradcheck(
        lambda s, a_, b_, al: auc_margin_loss(s, CLASSES, a_, b_, al, score_type="logits"), (h, a, b, alpha)
    )


def test_a_class_absent_from_the_batch_is_finite() -> None:
    logits = torch.tensor([[80.0, -80.0, 0.0], [-80.0, 80.0, 1.0]], requires_grad=True)
    for version in ("v1", "v2"):
        loss = auc_margin_loss(logits, torch.tensor([0, 1]), 0.1, 0.2, 0.3, version=version, score_type="logits")
        loss.backward()
        assert torch.isfinite(loss) and logits.grad is not None and torch.isfinite(logits.grad).all()


def test_module_checks_its_number_of_columns() -> None:
    with pytest.raises(ValueError, match="num_labels"):
        AUCMarginLoss(num_labels=3)(torch.rand(4, 2), torch.tensor([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="`num_labels`"):
        AUCMarginLoss(num_labels=0)
    with pytest.raises(ValueError, match="`imratio`"):
        AUCMarginLoss(num_labels=3, imratio=[0.2, 0.3])
