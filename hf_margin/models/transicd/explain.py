"""Read a TransICD prediction: the tokens each predicted code attended to, as data, HTML or a PNG."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hf_margin._validation import check_positive_int


@dataclass
class CodeExplanation:
    """One predicted code: its probability, its attention over the note's tokens and the top tokens."""

    code: str
    probability: float
    weights: list[float]
    top_tokens: list[tuple[str, float]]


@dataclass
class NoteExplanation:
    """A note's tokens and the explanations of its highest-scored codes."""

    tokens: list[str]
    codes: list[CodeExplanation]


@torch.no_grad()
def explain_note(
    model: Any, tokenizer: Any, text: str, top_codes: int = 3, top_tokens: int = 5, max_length: int | None = None
) -> NoteExplanation:
    """The `top_codes` highest-scored codes of one note, each with the `top_tokens` tokens it attended to most.

    Args:
        model: a `TransICDModel` with code-wise attention.
        tokenizer: the tokenizer the model was trained with.
        text: the note.
        top_codes: how many codes to explain (highest probability first).
        top_tokens: tokens listed per code.
        max_length: truncate the note to this many tokens (default: no truncation; the model chunks).
    """
    check_positive_int(top_codes, "top_codes")
    check_positive_int(top_tokens, "top_tokens")
    encoded = tokenizer(text, return_tensors="pt", truncation=max_length is not None, max_length=max_length)
    if model.config.pooling != "attention":
        raise ValueError("explanations need code-wise attention; this model uses pooling='mean'")
    was_training = model.training
    model.eval()
    # Only the kept codes' attention maps are built: memory stays bounded at any number of labels.
    top = model.top_codes(
        encoded["input_ids"].to(model.device), encoded["attention_mask"].to(model.device), k=top_codes
    )
    model.train(was_training)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist())
    codes = []
    for index, probability, weights in zip(
        top.indices[0].tolist(), top.probabilities[0].tolist(), top.attentions[0].cpu(), strict=True
    ):
        best = weights.argsort(descending=True)[:top_tokens].tolist()
        top_list = [(tokens[i], float(weights[i])) for i in best]
        codes.append(CodeExplanation(model.label_names[index], probability, weights.tolist(), top_list))
    return NoteExplanation(tokens, codes)


def explanation_html(explanation: NoteExplanation) -> str:
    """An HTML fragment: for each code, the note with every token shaded by that code's attention weight."""
    blocks = []
    for code in explanation.codes:
        peak = max(code.weights) or 1.0
        spans = []
        for token, weight in zip(explanation.tokens, code.weights, strict=True):
            alpha = weight / peak
            style = f"background: rgba(230, 80, 30, {alpha:.2f})"
            spans.append(f'<span title="{weight:.3f}" style="{style}">{html.escape(token)}</span>')
        blocks.append(f"<p><b>{html.escape(code.code)}</b> (p = {code.probability:.2f}): " + " ".join(spans) + "</p>")
    return '<div class="transicd-explanation">\n' + "\n".join(blocks) + "\n</div>\n"


def plot_explanation(explanation: NoteExplanation, path: str | Path) -> Path:
    """A PNG with one panel per code: its top tokens and their attention weights as horizontal bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(explanation.codes)
    fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels, 2.6), squeeze=False)
    for ax, code in zip(axes[0], explanation.codes, strict=True):
        labels = [token for token, _ in code.top_tokens]
        ax.barh(range(len(labels)), [weight for _, weight in code.top_tokens], color="#e6501e")
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.set_title(f"{code.code} (p = {code.probability:.2f})", fontsize=9)
        ax.set_xlabel("attention weight")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
