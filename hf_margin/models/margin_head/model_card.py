"""The fields of the `margin_head_classifier` model card, read from a `MarginHeadModel`'s config.

The head's paper comes from `hf_margin.catalogue` (ArcFace arXiv 1801.07698, CosFace arXiv 1801.09414,
ElasticFace arXiv 2109.09416, AdaFace arXiv 2204.00964; the softmax head is the margin-free baseline).
`MarginHeadModel.save_pretrained` writes the card; to add what the config does not hold (data, evaluation):

    model.save_pretrained(folder)
    save_model_card(folder, "margin_head_classifier",
                    **margin_head_card_values(model, evaluation_results={"TAR@FAR=1e-3": 0.91}))
"""

from __future__ import annotations

import json
from typing import Any

from hf_margin.catalogue import by_name
from hf_margin.model_cards import DEFAULT_LICENSE, NOT_EVALUATED, NOT_RECORDED
from hf_margin.models._model_card import backbone_name

# head_type -> the catalogue entry of its paper (the combined margin is ArcFace's section on m1, m2, m3).
_CATALOGUE = {
    "arcface": "arcface",
    "combined": "combined_margin",
    "cosface": "cosface",
    "elastic_arcface": "elastic_arcface",
    "elastic_cosface": "elastic_cosface",
    "adaface": "adaface",
}
_BIBTEX = {
    "1801.07698": ("deng2019arcface", "Deng, Jiankang and Guo, Jia and Xue, Niannan and Zafeiriou, Stefanos", 2019),
    "1801.09414": (
        "wang2018cosface",
        "Wang, Hao and Wang, Yitong and Zhou, Zheng and Ji, Xing and Gong, Dihong and "
        "Zhou, Jingchao and Li, Zhifeng and Liu, Wei",
        2018,
    ),
    "2109.09416": (
        "boutros2022elasticface",
        "Boutros, Fadi and Damer, Naser and Kirchbuchner, Florian and Kuijper, Arjan",
        2022,
    ),
    "2204.00964": ("kim2022adaface", "Kim, Minchul and Jain, Anil K. and Liu, Xiaoming", 2022),
}


def head_paper(head_type: str) -> tuple[str, str, str]:
    """(head name, paper sentence with its arXiv link, citation block) of a `hf_margin.heads` head type."""
    if head_type not in _CATALOGUE:
        return "Softmax", "a linear softmax classifier without a margin (the baseline)", "No paper: no margin."
    method = by_name(_CATALOGUE[head_type])
    arxiv = str(method.arxiv)
    key, authors, year = _BIBTEX[arxiv]
    bibtex = (
        f"```bibtex\n@article{{{key},\n  title   = {{{method.title}}},\n  author  = {{{authors}}},\n"
        f"  journal = {{arXiv preprint arXiv:{arxiv}}},\n  year    = {{{year}}}\n}}\n```"
    )
    return method.method, f"{method.title} ([arXiv {arxiv}](https://arxiv.org/abs/{arxiv}))", bibtex


def margin_head_card_values(model: Any, **values: Any) -> dict[str, Any]:
    """Every field of the `margin_head_classifier` card for `model` (a `MarginHeadModel`); `values` override."""
    config = model.config
    head_name, paper, citation = head_paper(config.head_type)
    head_kwargs = dict(config.head_kwargs or {})
    defaults = {
        "model_name": "margin-head-model",
        "repo_id": "margin-head-model",
        "license": DEFAULT_LICENSE,
        "base_model": backbone_name(config.backbone_config),
        "head_type": config.head_type,
        "head_name": head_name,
        "paper": paper,
        "citation": citation,
        "head_kwargs": json.dumps(head_kwargs),
        "pooling": config.pooling,
        "projection": f", a linear projection to {config.embedding_size} dimensions" if config.embedding_size else "",
        "num_labels": config.num_labels,
        "training_data": NOT_RECORDED,
        "evaluation_results": NOT_EVALUATED,
        "hyperparameters": {
            "head_type": config.head_type,
            **head_kwargs,
            "pooling": config.pooling,
            "embedding_size": config.embedding_size or "backbone width",
        },
    }
    return defaults | values
