"""PMA (arXiv 2411.15210) and the PGD-CE baseline: the schedule, the projection, the epsilon-ball and box, the exact
success set on a linear binary model, monotonicity in restarts, robust <= clean accuracy, transformers image
classifiers and embedding heads, and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hf_margin.functional.probability_margin import probability_margin_loss
from hf_margin.metrics.robustness import (
    RobustnessResult,
    pgd_attack,
    pma_attack,
    pma_objective,
    pma_robust_accuracy,
    pma_step_sizes,
    project_linf,
)


def mlp(inputs: int = 12, classes: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(inputs, 32), nn.Tanh(), nn.Linear(32, classes)).double().eval()


def data(rows: int = 64, inputs: int = 12, classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(rows, inputs, generator=g, dtype=torch.float64), torch.randint(classes, (rows,), generator=g)


def test_cosine_step_sizes_restart_at_the_change_point() -> None:
    assert pma_step_sizes(1.0, 4) == pytest.approx([1.0, 2.0, 1.0, 2.0])
    sizes = pma_step_sizes(0.1, 100)
    assert sizes[1] == pytest.approx(0.2) and sizes[51] == pytest.approx(0.2)
    assert all(0 <= a <= 0.2 + 1e-12 for a in sizes)
    assert all(sizes[i] >= sizes[i + 1] for i in range(1, 49)), "decays within phase 1"
    assert all(sizes[i] >= sizes[i + 1] for i in range(51, 99)), "decays within phase 2"
    expected = 0.1 * (1 + math.cos(math.pi * (70 - 50 - 1) / 50))
    assert sizes[70] == pytest.approx(expected)


def test_objective_per_round_and_phase() -> None:
    logits, labels = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    p = torch.softmax(logits, 1)
    p_y = p.gather(1, labels[:, None]).squeeze(1)
    runner_up = p.scatter(1, labels[:, None], -1.0).amax(1)
    torch.testing.assert_close(pma_objective(logits, labels, 0, 0, 10), p_y)
    torch.testing.assert_close(pma_objective(logits, labels, 1, 0, 10), p_y)
    torch.testing.assert_close(pma_objective(logits, labels, 0, 3, 10), -p_y)
    torch.testing.assert_close(pma_objective(logits, labels, 1, 4, 10), runner_up)
    for round_index in (0, 1):
        torch.testing.assert_close(
            pma_objective(logits, labels, round_index, 5, 10), probability_margin_loss(logits, labels, "none")
        )


def test_projection_is_idempotent_and_lands_in_ball_and_box() -> None:
    clean = torch.rand(20, 5, dtype=torch.float64)
    wild = clean + torch.randn(20, 5, dtype=torch.float64)
    for bounds in ((0.0, 1.0), None):
        once = project_linf(wild, clean, 0.1, bounds)
        torch.testing.assert_close(project_linf(once, clean, 0.1, bounds), once, rtol=0, atol=0)
        assert (once - clean).abs().max() <= 0.1 + 1e-12
    assert project_linf(wild, clean, 0.1).min() >= 0 and project_linf(wild, clean, 0.1).max() <= 1


@pytest.mark.parametrize("attack", [pma_attack, pgd_attack])
@pytest.mark.parametrize("bounds", [(0.0, 1.0), None])
def test_attacks_stay_in_the_ball_and_box_and_return_misclassified_points(attack, bounds) -> None:
    model = mlp()
    inputs, labels = data()
    adversarial = attack(model, inputs, labels, epsilon=0.3, steps=10, bounds=bounds)
    assert (adversarial - inputs).abs().max() <= 0.3 + 1e-12
    if bounds is not None:
        assert adversarial.min() >= 0 and adversarial.max() <= 1
    with torch.no_grad():
        clean_wrong = model(inputs).argmax(1) != labels
        adversarial_wrong = model(adversarial).argmax(1) != labels
    assert (adversarial_wrong | ~clean_wrong).all(), "success set contains the clean errors"
    assert adversarial_wrong.sum() > clean_wrong.sum(), "epsilon = 0.3 breaks more than the clean errors"
    torch.testing.assert_close(adversarial[clean_wrong], inputs[clean_wrong], rtol=0, atol=0)


@pytest.mark.parametrize("attack", [pma_attack, pgd_attack])
def test_linear_binary_model_breaks_exactly_the_samples_within_reach(attack) -> None:
    """Logit margin (w_y - w_o).x + b: the smallest L-inf flip is margin / |w_y - w_o|_1; both attacks find it."""
    torch.manual_seed(3)
    model = nn.Linear(6, 2).double().eval()
    inputs = torch.randn(400, 6, dtype=torch.float64)
    with torch.no_grad():
        logits = model(inputs)
    labels = (torch.rand(400) < 0.5).long()
    difference = (model.weight[0] - model.weight[1]).abs().sum().item()
    reach = (logits.gather(1, labels[:, None]) - logits.gather(1, 1 - labels[:, None])).squeeze(1) / difference
    epsilon = 0.3
    clear = ((reach - epsilon).abs() > 0.02 * epsilon) & ~torch.isclose(reach, torch.zeros_like(reach))
    adversarial = attack(model, inputs[clear], labels[clear], epsilon, steps=10, bounds=None)
    with torch.no_grad():
        broken = model(adversarial).argmax(1) != labels[clear]
    assert torch.equal(broken, reach[clear] < epsilon)
    assert (reach[clear] < 0).any() and ((reach[clear] > 0) & (reach[clear] < epsilon)).any()


def test_robust_accuracy_below_clean_and_restarts_never_raise_it() -> None:
    model = mlp(seed=1)
    inputs, labels = data(rows=96, seed=1)
    results = {
        restarts: pma_robust_accuracy(
            model, (inputs, labels), 0.08, steps=8, restarts=restarts, bounds=(0.0, 1.0), batch_size=40, progress=False
        )
        for restarts in (1, 2, 3)
    }
    for result in results.values():
        assert result.samples == 96 and result.robust_accuracy <= result.clean_accuracy
    assert results[1].robust_accuracy >= results[2].robust_accuracy >= results[3].robust_accuracy
    assert results[1].robust_accuracy < results[1].clean_accuracy
    pgd = pma_robust_accuracy(model, (inputs, labels), 0.08, steps=8, attack="pgd", batch_size=40, progress=False)
    assert pgd.attack == "pgd" and pgd.clean_accuracy == results[1].clean_accuracy
    assert pgd.robust_accuracy <= pgd.clean_accuracy
    zero = pma_robust_accuracy(model, (inputs, labels), 0.0, steps=4, progress=False)
    assert zero.robust_accuracy == zero.clean_accuracy, "epsilon = 0 changes nothing"


def test_transformers_image_classifier_on_a_dataset_with_budget() -> None:
    import datasets
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=8,
        patch_size=4,
        num_channels=1,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    model = ViTForImageClassification(config).train()
    g = torch.Generator().manual_seed(0)
    columns = {
        "pixel_values": torch.rand(30, 1, 8, 8, generator=g).tolist(),
        "labels": torch.randint(3, (30,), generator=g).tolist(),
    }
    rows = datasets.Dataset.from_dict(columns).with_format("torch")
    result = pma_robust_accuracy(model, rows, epsilon=8 / 255, steps=5, batch_size=8, max_samples=20, progress=False)
    assert isinstance(result, RobustnessResult) and result.samples == 20
    assert 0 <= result.robust_accuracy <= result.clean_accuracy <= 1
    assert model.training, "the model's mode is restored"
    loader = torch.utils.data.DataLoader(rows, batch_size=10)
    assert pma_robust_accuracy(model, loader, 8 / 255, steps=5, progress=False).samples == 30
    pixels = rows["pixel_values"][:4]
    adversarial = pma_attack(model.eval(), pixels, rows["labels"][:4], 8 / 255, steps=5)
    assert adversarial.shape == pixels.shape and (adversarial - pixels).abs().max() <= 8 / 255 + 1e-6


def test_embedding_classifier_callable_with_unbounded_inputs() -> None:
    from transformers.modeling_outputs import SequenceClassifierOutput

    head = nn.Linear(16, 3).double()
    embeddings = torch.randn(40, 16, dtype=torch.float64) * 5  # outside [0, 1]: needs bounds=None

    def classify(x: torch.Tensor) -> SequenceClassifierOutput:
        return SequenceClassifierOutput(logits=head(torch.nn.functional.normalize(x, dim=1)))

    labels = classify(embeddings).logits.argmax(1)
    with pytest.raises(ValueError, match="`inputs` must lie within bounds"):
        pma_robust_accuracy(classify, (embeddings, labels), 0.5, steps=4, progress=False)
    result = pma_robust_accuracy(classify, (embeddings, labels), 2.0, steps=10, bounds=None, progress=False)
    assert result.clean_accuracy == 1.0 and result.robust_accuracy < 1.0
    batches = [{"embedding": embeddings[i : i + 20], "label": labels[i : i + 20]} for i in (0, 20)]
    keyed = pma_robust_accuracy(
        classify, batches, 2.0, steps=10, bounds=None, input_key="embedding", label_key="label", progress=False
    )
    assert keyed == result


def test_errors_name_the_argument() -> None:
    model = mlp()
    inputs, labels = data()
    for epsilon in (-0.1, math.inf, math.nan):
        with pytest.raises(ValueError, match="`epsilon`"):
            pma_attack(model, inputs, labels, epsilon)
    with pytest.raises(ValueError, match="`steps`"):
        pma_attack(model, inputs, labels, 0.1, steps=0)
    with pytest.raises(ValueError, match="`restarts`"):
        pgd_attack(model, inputs, labels, 0.1, restarts=0)
    with pytest.raises(ValueError, match=r"`labels` must be a tensor of shape \(64,\)"):
        pma_attack(model, inputs, labels[:5], 0.1)
    with pytest.raises(ValueError, match="`labels` must lie in"):
        pma_attack(model, inputs, labels + 4, 0.1)
    with pytest.raises(ValueError, match="`inputs`"):
        pma_attack(model, inputs.long(), labels, 0.1)
    with pytest.raises(ValueError, match="`bounds`"):
        pma_attack(model, inputs, labels, 0.1, bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="`step_size`"):
        pgd_attack(model, inputs, labels, 0.1, step_size=-1.0)
    with pytest.raises(ValueError, match="`attack`"):
        pma_robust_accuracy(model, (inputs, labels), 0.1, attack="apgd")
    with pytest.raises(ValueError, match="input_key"):
        pma_robust_accuracy(model, [{"x": inputs, "labels": labels}], 0.1, progress=False)
    with pytest.raises(TypeError, match="`model` must return logits"):
        pma_attack(lambda x: x.sum(1), inputs, labels, 0.1)


def test_pma_needs_three_steps() -> None:
    """With K = 1 or 2 every PMA step size is 0 (only the random starts): refused, where PGD still runs."""
    model = mlp()
    inputs, labels = data(rows=8)
    assert pma_step_sizes(0.1, 3) == pytest.approx([0.1, 0.1, 0.2])
    for steps in (1, 2):
        with pytest.raises(ValueError, match=r"`steps` must be >= 3 for PMA"):
            pma_step_sizes(0.1, steps)
        with pytest.raises(ValueError, match=r"`steps` must be >= 3 for PMA"):
            pma_attack(model, inputs, labels, 0.1, steps=steps)
        with pytest.raises(ValueError, match=r"`steps` must be >= 3 for PMA"):
            pma_robust_accuracy(model, (inputs, labels), 0.1, steps=steps, progress=False)
        pgd = pma_robust_accuracy(model, (inputs, labels), 0.1, steps=steps, attack="pgd", progress=False)
        assert pgd.robust_accuracy <= pgd.clean_accuracy


class CountingModel(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(inputs)


@pytest.mark.parametrize("attack", ["pma", "pgd"])
def test_robust_accuracy_runs_no_extra_clean_forward(attack: str) -> None:
    """The clean accuracy comes from the attack's own clean forward: as many model calls as the attack alone."""
    inputs, labels = data(rows=16)
    counted = CountingModel(mlp())
    result = pma_robust_accuracy(counted, (inputs, labels), 0.02, steps=5, attack=attack, batch_size=16, progress=False)
    with_accuracy, counted.calls = counted.calls, 0
    if attack == "pma":
        pma_attack(counted, inputs, labels, 0.02, steps=5)
    else:
        pgd_attack(counted, inputs, labels, 0.02, steps=5, restarts=2)
    assert with_accuracy == counted.calls > 5
    with torch.no_grad():
        assert result.clean_accuracy == pytest.approx(
            float((counted.model(inputs).argmax(1) == labels).double().mean())
        )


def test_pma_checks_the_labels_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The label range check (a device sync) runs at the first objective evaluation, not at every step."""
    import hf_margin.functional.probability_margin as probability_margin

    calls = []
    check = probability_margin.check_class_labels
    monkeypatch.setattr(probability_margin, "check_class_labels", lambda *args: calls.append(1) or check(*args))
    model = CountingModel(mlp())
    inputs, labels = data(rows=16)
    pma_attack(model, inputs, labels, 0.01, steps=6, restarts=2)
    assert model.calls > 20, "the attack ran many steps"
    assert len(calls) == 1


def test_settings_are_checked_before_they_are_used() -> None:
    # issue 19 items 3-5: a string radius crashed in the step sizes or the progress bar, steps=0 divided by zero
    model = mlp()
    inputs, labels = data(rows=8)
    for call in (pma_attack, pgd_attack):
        with pytest.raises(TypeError, match="`epsilon` must be a real number"):
            call(model, inputs, labels, "0.5")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="`steps` must be an int"):
            call(model, inputs, labels, 0.1, steps=3.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="`restarts` must be an int"):
            call(model, inputs, labels, 0.1, restarts="1")  # type: ignore[arg-type]
    for epsilon in (-1.0, math.nan):
        with pytest.raises(ValueError, match="`epsilon` must be a finite number >= 0"):
            pgd_attack(model, inputs, labels, epsilon)
    with pytest.raises(ValueError, match="`steps` must be an integer >= 1, got 0"):
        pgd_attack(model, inputs, labels, 0.1, steps=0)
    with pytest.raises(TypeError, match="`epsilon` must be a real number"):
        pma_robust_accuracy(model, (inputs, labels), "0.5", progress=False)  # type: ignore[arg-type]


def test_project_linf_checks_its_arguments() -> None:
    clean = torch.rand(3, 4)
    moved = clean + 0.3
    torch.testing.assert_close(project_linf(moved, clean, 0.1, None), clean + 0.1)
    with pytest.raises(TypeError, match="`epsilon` must be a real number"):
        project_linf(moved, clean, "0.1")  # type: ignore[arg-type]
    for epsilon in (-1.0, math.nan):  # were a silent all-zero projection and a NaN one
        with pytest.raises(ValueError, match="`epsilon` must be a finite number >= 0"):
            project_linf(moved, clean, epsilon)
    for name, args in (
        ("inputs", (moved.clone().fill_(math.nan), clean)),
        ("clean", (moved, clean.clone().fill_(math.inf))),
    ):
        with pytest.raises(ValueError, match=rf"`{name}` has 12 non-finite"):
            project_linf(*args, 0.1)
    with pytest.raises(ValueError, match="`inputs` and `clean` must have one shape"):
        project_linf(moved[:2], clean, 0.1)
    with pytest.raises(ValueError, match="`bounds`"):
        project_linf(moved, clean, 0.1, bounds=(1.0, 0.0))
