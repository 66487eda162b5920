"""Margin-MSE: its defining properties, the teacher ensemble, sentence-transformers' MarginMSELoss, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hf_margin.functional.margin_mse import aggregate_teachers, margin_mse_loss


def scores(seed: int = 0, negatives: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(5, 1 + negatives, generator=g, dtype=torch.float64), torch.randn(5, 1 + negatives, generator=g)


def test_equals_mse_of_margins_and_is_shift_invariant() -> None:
    student, teacher = scores()
    expected = F.mse_loss(student[:, :1] - student[:, 1:], (teacher[:, :1] - teacher[:, 1:]).double())
    torch.testing.assert_close(margin_mse_loss(student, teacher), expected)
    torch.testing.assert_close(margin_mse_loss(student + 7.0, teacher - 3.0), expected)


def test_zero_when_margins_match_though_scores_differ() -> None:
    student, _ = scores()
    assert float(margin_mse_loss(student, (student + 42.0).float())) == pytest.approx(0.0, abs=1e-10)


def test_positive_and_negative_gradients_are_opposite() -> None:
    student, teacher = scores(negatives=1)
    student.requires_grad_()
    margin_mse_loss(student, teacher).backward()
    torch.testing.assert_close(student.grad[:, 0], -student.grad[:, 1])
    assert torch.autograd.gradcheck(lambda s: margin_mse_loss(s, teacher), (student,))


def test_teacher_ensemble() -> None:
    teachers = [torch.randn(4, 3) for _ in range(3)]
    torch.testing.assert_close(aggregate_teachers(teachers), (teachers[0] + teachers[1] + teachers[2]) / 3)
    torch.testing.assert_close(aggregate_teachers(teachers, "max"), torch.stack(teachers).amax(0))
    with pytest.raises(ValueError, match="`aggregation`"):
        aggregate_teachers(teachers, "vote")


def test_matches_sentence_transformers_margin_mse_loss(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss

    from tests.embeddings.tiny_st import retrieval_rows, tiny_sentence_transformer

    model = tiny_sentence_transformer(tmp_path / "tiny")
    rows = retrieval_rows(n=6, negatives=2)
    features = [model.preprocess(texts) for texts in rows.values()]
    teacher = torch.randn(6, 3)
    reference = MarginMSELoss(model)(features, teacher)
    embeddings = [model(f)["sentence_embedding"] for f in features]
    student = torch.stack([(embeddings[0] * e).sum(-1) for e in embeddings[1:]], dim=1)
    torch.testing.assert_close(margin_mse_loss(student, teacher), reference)


def test_bad_input() -> None:
    student, teacher = scores()
    with pytest.raises(ValueError, match="same number of negatives"):
        margin_mse_loss(student, teacher[:, :3])
    with pytest.raises(ValueError, match=r"`student_scores` must be a \(batch, 1 \+ negatives\)"):
        margin_mse_loss(student[:, :1], teacher[:, :1])


def test_non_finite_scores_give_a_non_finite_loss() -> None:
    """#19 policy: values are not checked with a host sync; a NaN teacher score is never a plausible loss."""
    student, teacher = scores()
    teacher[0, 1] = float("nan")
    assert torch.isnan(margin_mse_loss(student, teacher))
    assert torch.isnan(margin_mse_loss(student, teacher, reduction="none")[0, 0])


def test_bad_reduction_names_the_argument() -> None:
    """#19 item 2: an unknown reduction is a ValueError naming `reduction` (not torch's unnamed message)."""
    scores = torch.randn(3, 4)
    with pytest.raises(ValueError, match="`reduction`"):
        margin_mse_loss(scores, scores, reduction="avg")
