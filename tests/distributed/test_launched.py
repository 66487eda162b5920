"""`accelerate launch` on 2 CPU processes (gloo), DDP and FSDP2, for the five set-ups of `cases`: after STEPS steps
every rank holds the weights of one process trained on the whole batch, and the saved model (with its card) is
written once, by rank 0, and reloads in one process with those weights.

DDP goes through ``Trainer.train()`` as a user's script does. FSDP2 applies `fully_shard` directly (see
tests/distributed/worker.py: accelerate's FSDP plugin does not run on CPU processes) and saves a full state dict.
One launch serves several runs (the process start-up is most of the cost): the quick launch (TransICD, DDP and
FSDP2) runs by default, the other four set-ups are marked heavy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")
pytest.importorskip("sentence_transformers")

from tests.distributed.cases import CASES, full_parameters, reloaded, trained_weights
from tests.distributed.launch import launch_runs, rank_weights
from tests.multiprocess import assert_same_weights

QUICK = "transicd"
HEAVY = [case for case in CASES if case != QUICK]
MODES = ("ddp", "fsdp2")
# a tag each case's card carries once in its front matter (a card written twice, or another template, fails)
CARD_TAGS = {
    "madpo": "madpo",
    "petal": "petal",
    "margin_mse": "margin-mse",
    "embedding": "loss:MarginEmbeddingLoss",
    "transicd": "transicd",
}
ADAPTERS = {"madpo", "petal"}  # saved as a PEFT adapter


def _runs() -> list[pytest.param]:
    return [
        pytest.param(mode, case, marks=[pytest.mark.heavy] if case != QUICK else [], id=f"{mode}-{case}")
        for case in CASES
        for mode in MODES
    ]


@pytest.fixture(scope="module")
def quick_launch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return launch_runs(tmp_path_factory.mktemp("launch_quick"), [(mode, QUICK) for mode in MODES])


@pytest.fixture(scope="module")
def heavy_launch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return launch_runs(tmp_path_factory.mktemp("launch_heavy"), [(mode, case) for case in HEAVY for mode in MODES])


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, dict]]:
    """{case: (weights before, weights after)} of one process on the whole batch, filled on first use."""
    return {}


def _launched(request: pytest.FixtureRequest, mode: str, case: str) -> Path:
    out = request.getfixturevalue("quick_launch" if case == QUICK else "heavy_launch")
    return out / mode / case


def _single(cache: dict, case: str, folder: Path) -> tuple[dict, dict]:
    if case not in cache:
        before: dict[str, torch.Tensor] = {}
        after, _ = trained_weights(case, folder, world=1, before=before)
        cache[case] = (before, after)
    return cache[case]


@pytest.mark.parametrize(("mode", "case"), _runs())
def test_two_processes_train_like_one_process_with_the_whole_batch(
    request: pytest.FixtureRequest, one_process: dict, tmp_path: Path, mode: str, case: str
) -> None:
    """2 processes x 4 rows for 2 SGD steps equal 1 process x 8 rows, on every rank, parameter by parameter
    (the tolerance of the spawned DDP tests: float32 sums in another order). Every parameter moved, so the
    equality could fail."""
    folder = _launched(request, mode, case)
    before, single = _single(one_process, case, tmp_path)
    changed = [name for name in single if not torch.equal(before[name], single[name])]
    assert changed and len(changed) >= len(single) // 2, f"training moved only {changed}"
    for weights in rank_weights(folder):
        assert sorted(weights) == sorted(single)
        assert_same_weights([single[n] for n in sorted(single)], [weights[n] for n in sorted(single)])


@pytest.mark.parametrize(("mode", "case"), _runs())
def test_saved_model_and_card_are_written_once_and_reload_in_one_process(
    request: pytest.FixtureRequest, mode: str, case: str
) -> None:
    """The final save (DDP: ``trainer.save_model``; FSDP2: the gathered full state dict saved from an unsharded
    copy) holds one weights file and one card of the method, and loads in this process with the trained
    weights. Under DDP the checkpoint of the last step holds one weights file and one RNG file per rank."""
    folder = _launched(request, mode, case)
    final = folder / "final"
    weights_file = "adapter_model.safetensors" if case in ADAPTERS else "model.safetensors"
    assert [p.name for p in final.glob("*.safetensors")] == [weights_file]
    assert not list(folder.rglob("*fsdp*")), "a per-rank FSDP shard was written"
    card = (final / "README.md").read_text(encoding="utf-8")
    front_matter = card.split("---\n")[1]
    assert card.startswith("---\n") and front_matter.count(f"- {CARD_TAGS[case]}\n") == 1
    if mode == "ddp":
        checkpoint = folder / "checkpoint-2"
        assert [p.name for p in checkpoint.glob("*.safetensors")] == [weights_file]
        assert {p.name for p in checkpoint.glob("rng_state*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
        assert (checkpoint / "README.md").is_file()
    trained = rank_weights(folder)[0]
    loaded = full_parameters(reloaded(case, final))
    assert sorted(loaded) == sorted(trained)
    assert_same_weights([trained[n] for n in sorted(trained)], [loaded[n] for n in sorted(trained)], atol=0, rtol=0)


@pytest.mark.heavy
def test_precomputed_reference_log_probs_launch_like_one_process(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    out = launch_runs(tmp_path_factory.mktemp("launch_precomputed"), [("ddp", "madpo_precomputed")])
    single, _ = trained_weights("madpo_precomputed", tmp_path, world=1)
    for weights in rank_weights(out / "ddp" / "madpo_precomputed"):
        assert_same_weights([single[n] for n in sorted(single)], [weights[n] for n in sorted(single)])


CATALOGUE = ("auc_margin", "aldr_kl")


@pytest.mark.heavy
def test_catalogue_losses_with_a_state_of_their_own_launch_like_one_process(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """ClassificationLossTrainer under DDP and FSDP2: AUC-M's a, b, alpha (trained outside the model: each process
    trained its own before their gradients were averaged) and ALDR-KL's per-example lambdas (each process updated
    only its own rows before they were shared) end equal to one process on the whole batch, on every rank, and
    so do the model's weights."""
    runs = [(mode, case) for case in CATALOGUE for mode in MODES]
    out = launch_runs(tmp_path_factory.mktemp("launch_catalogue"), runs)
    for case in CATALOGUE:
        before: dict[str, torch.Tensor] = {}
        single, _ = trained_weights(case, tmp_path / case, world=1, before=before)
        loss_keys = [name for name in single if name.startswith("loss.")]
        assert loss_keys and all(not torch.equal(before[n], single[n]) for n in loss_keys), "the loss state stayed"
        for mode in MODES:
            for weights in rank_weights(out / mode / case):
                assert sorted(weights) == sorted(single)
                assert_same_weights([single[n] for n in sorted(single)], [weights[n] for n in sorted(single)])
