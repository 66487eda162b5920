"""The condensation loop (DC / DCC, arXiv 2202.02916): initialisation from real images, shapes and labels, the
warm-up schedule, the matching loss going down on a fixed network, BatchNorm networks, and input errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from hf_margin.functional.gradient_matching import dc_loss, dcc_loss
from hf_margin.trainers.condensation import condense


def _data(classes: int = 3, per_class: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(classes).repeat_interleave(per_class)
    images = torch.randn(len(labels), 1, 4, 4, generator=g) + labels.view(-1, 1, 1, 1).float()
    return images, labels


def _fixed_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3))


def test_initialised_from_real_images_and_labelled_class_major() -> None:
    images, labels = _data()
    out = condense(_fixed_net, images, labels, 2, outer_loop=1, inner_loop=1, lr_img=1e-12, progress=False)
    assert out.images.shape == (6, 1, 4, 4) and out.labels.tolist() == [0, 0, 1, 1, 2, 2]
    for image, label in zip(out.images, out.labels, strict=True):  # a near-zero step keeps the real image
        distances = (images[labels == label] - image).flatten(1).norm(dim=1)
        assert distances.min() < 1e-6


def test_matching_loss_goes_down_on_a_fixed_network() -> None:
    images, labels = _data()
    net = _fixed_net()
    real = [images[labels == c] for c in range(3)]
    for method, loss_fn in (("dc", dc_loss), ("dcc", dcc_loss)):
        start = condense(
            lambda: copy.deepcopy(net),
            images,
            labels,
            1,
            method=method,
            outer_loop=1,
            inner_loop=1,
            lr_img=1e-12,
            progress=False,
        )
        out = condense(
            lambda: copy.deepcopy(net),
            images,
            labels,
            1,
            method=method,
            outer_loop=1,
            inner_loop=15,
            network_steps=0,
            outer_warmup=0,
            progress=False,
        )
        before = loss_fn(net, real, list(start.images.unsqueeze(1))).item()
        after = loss_fn(net, real, list(out.images.unsqueeze(1))).item()
        assert after < 0.8 * before, (method, before, after)
        assert out.losses[-1] < out.losses[0]


def test_warm_up_uses_dc_first_then_dcc() -> None:
    images, labels = _data()
    out = condense(
        _fixed_net,
        images,
        labels,
        1,
        outer_loop=3,
        inner_loop=2,
        network_steps=1,
        outer_warmup=2,
        inner_warmup=10,
        progress=False,
    )
    assert out.contrastive == [False, False, False, False, True, True]
    dc = condense(
        _fixed_net, images, labels, 1, method="dc", outer_loop=2, inner_loop=2, outer_warmup=0, progress=False
    )
    assert dc.contrastive == [False] * 4 and all(torch.isfinite(torch.tensor(dc.losses)))


def test_batch_norm_network_runs_and_returns_finite_images() -> None:
    images, labels = _data()

    def model_fn() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3)
        )

    out = condense(
        model_fn, images, labels, 3, outer_loop=2, inner_loop=2, network_steps=2, outer_warmup=1, progress=False
    )
    assert out.images.shape == (9, 1, 4, 4) and torch.isfinite(out.images).all()


def test_more_images_per_class_than_real_ones() -> None:
    images, labels = _data(per_class=2)
    out = condense(_fixed_net, images, labels, 4, outer_loop=1, inner_loop=1, progress=False)
    assert out.images.shape == (12, 1, 4, 4) and torch.isfinite(out.images).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"real_images": torch.zeros(6, 4, dtype=torch.long)}, "real_images.*floating"),
        ({"real_labels": torch.zeros(5, dtype=torch.long)}, r"real_labels.*\(24,\)"),
        ({"real_labels": torch.zeros(24)}, "real_labels.*integer"),
        ({"real_labels": torch.tensor([0, 2] * 12)}, r"real_labels.*missing \[1\]"),
        ({"images_per_class": 0}, "images_per_class.*>= 1"),
        ({"method": "dsa"}, "method.*'dcc', 'dc'"),
        ({"inner_loop": 0}, "inner_loop.*>= 1"),
        ({"network_steps": -1}, "network_steps.*>= 0"),
        ({"lr_img": 0.0}, "lr_img.*> 0"),
        ({"momentum": 1.0}, r"momentum.*\[0, 1\)"),
    ],
)
def test_errors_name_the_argument(kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    images, labels = _data()
    arguments = {
        "real_images": images,
        "real_labels": labels,
        "images_per_class": 1,
        "outer_loop": 1,
        "progress": False,
        **kwargs,
    }
    with pytest.raises((ValueError, TypeError), match=match):
        condense(_fixed_net, **arguments)
