"""AnyLoss module: same value as the functional, validated at construction, trains a toy classifier."""

from __future__ import annotations

import pytest
import torch

from hf_margin.functional.anyloss import METRICS, anyloss
from hf_margin.losses.anyloss import AnyLoss


def test_module_matches_the_functional() -> None:
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(16, generator=g), torch.randint(0, 2, (16,), generator=g)
    many, classes = torch.randn(16, 3, generator=g), torch.arange(16) % 3
    for metric in METRICS:
        loss = AnyLoss(metric, beta=2.0, amplification=10.0)
        torch.testing.assert_close(loss(logits, labels), anyloss(logits, labels, metric, beta=2.0, amplification=10.0))
        torch.testing.assert_close(loss(many, classes), anyloss(many, classes, metric, beta=2.0, amplification=10.0))
    default = AnyLoss()
    assert (default.metric, default.beta, default.amplification, default.inputs) == ("f_beta", 1.0, 73.0, "logits")
    assert "metric='f_beta'" in repr(default)
    probabilities = AnyLoss("g_mean", inputs="probabilities")
    torch.testing.assert_close(probabilities(logits.sigmoid(), labels), AnyLoss("g_mean")(logits, labels))


def test_training_on_separable_data_lowers_the_loss() -> None:
    g = torch.Generator().manual_seed(1)
    features = torch.randn(64, 2, generator=g)
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0.8).long()  # imbalanced: about a quarter positive
    model = torch.nn.Linear(2, 1)
    criterion = AnyLoss("f_beta", amplification=10.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    first = float(criterion(model(features).squeeze(1), labels).detach())
    for _ in range(60):
        optimiser.zero_grad()
        loss = criterion(model(features).squeeze(1), labels)
        loss.backward()
        optimiser.step()
    assert float(loss.detach()) < first - 0.2 and float(loss.detach()) < 0.2, (first, float(loss.detach()))


def test_constructor_names_the_bad_argument() -> None:
    with pytest.raises(ValueError, match="`metric` must be one of"):
        AnyLoss("auc")
    with pytest.raises(ValueError, match="`beta` must be a finite number > 0"):
        AnyLoss(beta=0.0)
    with pytest.raises(ValueError, match="`amplification` must be a finite number > 0"):
        AnyLoss(amplification=-1.0)
    with pytest.raises(ValueError, match="`inputs` must be one of"):
        AnyLoss(inputs="scores")
    with pytest.raises(ValueError, match="`eps` must be a finite number > 0"):
        AnyLoss(eps=0.0)
