"""The few-shot demo entry (Proto-Triplet / ICNN, arXiv 2305.09062): the episode sampler, the paper's averaged
total loss against hand-written components, the episode accuracy against a loop reference, the interval against
statsmodels, and a tiny real run on digits (cached features reused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hf_margin.demo import DemoContext
from hf_margin.demo import few_shot as demo


def test_episodes_are_seeded_class_major_and_distinct() -> None:
    labels = torch.arange(8).repeat_interleave(6)
    identities = torch.tensor([2, 3, 5, 7])
    support, query = demo.sample_episodes(labels, identities, 3, 2, 4, 50, torch.Generator().manual_seed(0))
    assert support.shape == (50, 3, 2) and query.shape == (50, 3, 4)
    rows = torch.cat([support, query], 2)  # (E, ways, shots + queries)
    assert (labels[rows] == labels[rows[:, :, :1]]).all(), "every row of an episode class is that class's"
    assert set(labels[rows].unique().tolist()) == {2, 3, 5, 7}
    for episode in rows:
        assert len(set(episode.flatten().tolist())) == episode.numel(), "no image is used twice in an episode"
        assert len(set(labels[episode[:, 0]].tolist())) == 3, "the ways are distinct identities"
    again = demo.sample_episodes(labels, identities, 3, 2, 4, 50, torch.Generator().manual_seed(0))
    other = demo.sample_episodes(labels, identities, 3, 2, 4, 50, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], support) and torch.equal(again[1], query)
    assert not torch.equal(other[0], support)


def test_episode_sampler_rejects_impossible_episodes() -> None:
    labels = torch.arange(4).repeat_interleave(3)
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="`ways` = 5 needs at least 5 identities, got 4"):
        demo.sample_episodes(labels, torch.arange(4), 5, 1, 1, 1, generator)
    with pytest.raises(ValueError, match=r"`shots` \+ `queries` = 4 exceeds the images of some identity \(3\)"):
        demo.sample_episodes(labels, torch.arange(4), 2, 1, 3, 1, generator)
    with pytest.raises(ValueError, match="shots"):
        demo.sample_episodes(labels, torch.arange(4), 2, 0, 1, 1, generator)


def _protonet_ce_reference(support: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    prototypes = support.mean(1)  # (ways, D)
    logits = torch.stack([-((q - prototypes) ** 2).sum(1) for q in queries.flatten(0, 1)])
    return F.cross_entropy(logits, torch.arange(support.shape[0]).repeat_interleave(queries.shape[1]))


def test_episode_loss_is_the_mean_of_the_selected_components() -> None:
    from hf_margin.functional.few_shot import icnn_loss, proto_triplet_loss

    g = torch.Generator().manual_seed(0)
    support, queries = torch.randn(4, 2, 6, generator=g), torch.randn(4, 3, 6, generator=g)
    s_y, q_y = torch.arange(4).repeat_interleave(2), torch.arange(4).repeat_interleave(3)
    cross = _protonet_ce_reference(support, queries)
    triplet = proto_triplet_loss(support.flatten(0, 1), s_y, queries.flatten(0, 1), q_y, margin=0.5)
    icnn = icnn_loss(torch.cat([support.flatten(0, 1), queries.flatten(0, 1)]), torch.cat([s_y, q_y]), ipc=5)
    assert cross > 0 and triplet > 0 and icnn > 0
    torch.testing.assert_close(demo.episode_loss(support, queries, ("cross",)), cross)
    torch.testing.assert_close(demo.episode_loss(support, queries, ("cross", "prototriplet")), (cross + triplet) / 2)
    torch.testing.assert_close(demo.episode_loss(support, queries, ("cross", "fullicnn")), (cross + icnn) / 2)
    torch.testing.assert_close(demo.episode_loss(support, queries, demo.COMPONENTS), (cross + triplet + icnn) / 3)


def test_episode_loss_rejects_unknown_or_no_components() -> None:
    support, queries = torch.randn(2, 1, 3), torch.randn(2, 2, 3)
    with pytest.raises(ValueError, match="components"):
        demo.episode_loss(support, queries, ("cross", "suppicnn"))
    with pytest.raises(ValueError, match="at least one"):
        demo.episode_loss(support, queries, ())


def test_methods_add_the_papers_components_to_protonet_ce() -> None:
    assert demo.METHODS[demo.BASELINE] == ("cross",)
    assert all(components[0] == "cross" for components in demo.METHODS.values())
    assert {c for components in demo.METHODS.values() for c in components} == set(demo.COMPONENTS)


def test_episode_accuracy_matches_a_loop_reference() -> None:
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(6).repeat_interleave(5)
    embeddings = torch.randn(30, 4, generator=g) + labels.unsqueeze(1) * 0.4
    support, query = demo.sample_episodes(labels, torch.arange(6), 4, 2, 3, 20, g)
    expected = []
    for s, q in zip(support, query, strict=True):
        prototypes = torch.stack([embeddings[rows].mean(0) for rows in s])
        hits = [int(((embeddings[i] - prototypes) ** 2).sum(1).argmin()) == j for j, rows in enumerate(q) for i in rows]
        expected.append(sum(hits) / len(hits))
    accuracy = demo.episode_accuracy(embeddings, support, query)
    torch.testing.assert_close(accuracy, torch.tensor(expected, dtype=torch.float64))
    assert 0 < accuracy.mean() < 1


def test_interval_matches_statsmodels() -> None:
    from statsmodels.stats.weightstats import DescrStatsW

    values = torch.rand(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mean, half_width = demo.mean_and_ci95(values)
    low, high = DescrStatsW(values.numpy()).zconfint_mean(alpha=0.05)
    assert mean == pytest.approx((low + high) / 2, rel=1e-12)
    assert half_width == pytest.approx((high - low) / 2, rel=1e-3)  # 1.96 against the exact normal quantile


def test_paired_difference_against_the_baseline() -> None:
    base = torch.tensor([[0.2, 0.4, 0.6, 0.8]])
    method = torch.tensor([[0.4, 0.4, 0.8, 1.0], [0.2, 0.6, 0.6, 0.8]])
    result = demo.Accuracy.from_episodes(method, base, 1.5)
    assert result.mean == pytest.approx(0.6) and result.seed_means == pytest.approx([0.65, 0.55])
    assert result.difference == pytest.approx(0.1) and result.difference_ci95 < result.ci95
    assert demo.Accuracy.from_episodes(base, base, 0.0).difference == 0


def test_tiny_run_on_digits_writes_rows_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    monkeypatch.delenv("HF_MARGIN_DATA", raising=False)
    monkeypatch.setenv("HF_MARGIN_CACHE", str(tmp_path / "cache"))
    setup = demo.FewShotSetup(
        shots=(1, 2),
        queries=3,
        train_episodes=4,
        test_episodes=30,
        hidden_size=0,
        embedding_size=8,
        image_size=32,
        max_images_per_identity=6,
        seeds=2,
    )
    context = DemoContext(out_dir=tmp_path / "out", data_dir=None)
    rows = demo.run(context, setup)
    assert len(rows) == 2 * (len(demo.METHODS) - 1) and {r.dataset for r in rows} == {"sklearn digits"}
    assert {r.metric for r in rows} == {"5-way 1-shot acc", "5-way 2-shot acc"}
    assert all(0.2 < r.ours <= 1.0 and 0.2 < r.baseline_value <= 1.0 and r.seconds > 0 for r in rows)
    report = json.loads((tmp_path / "out" / "few_shot.json").read_text())
    assert report["dataset"] == "sklearn digits" and report["setup"]["seeds"] == 2
    for setting in ("5-way 1-shot", "5-way 2-shot"):
        results = report["accuracy"][setting]
        assert set(results) == {"frozen features", *demo.METHODS}
        assert results[demo.BASELINE]["difference"] == 0 and len(results[demo.BASELINE]["seed_means"]) == 2
        assert all(r["ci95"] > 0 for r in results.values())
    cached = list((tmp_path / "cache").glob("few_shot_effnet_lite0_32_*.npy"))
    assert len(cached) == 1

    def no_backbone(*args: object) -> None:
        raise AssertionError("the features should come from the cache")

    monkeypatch.setattr(demo, "load_features", no_backbone)
    again = demo.run(context, setup)
    assert [r.ours for r in again] == [r.ours for r in rows]
