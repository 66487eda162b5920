"""The fields of the `margin_head_classifier` model card, read from a `MarginHeadModel`'s config.

The head's paper (as in its `hf_margin.catalogue` entry; a test checks they agree): ArcFace arXiv 1801.07698,
CosFace arXiv 1801.09414, ElasticFace arXiv 2109.09416, AdaFace arXiv 2204.00964; the softmax head is the
margin-free baseline.
`MarginHeadModel.save_pretrained` writes the card; to add what the config does not hold (data, evaluation):

    model.save_pretrained(folder)
    save_model_card(folder, "margin_head_classifier",
                    **margin_head_card_values(model, evaluation_results={"TAR@FAR=1e-3": 0.91}))
"""

from __future__ import annotations

import json
from typing import Any

from hf_margin.model_cards import DEFAULT_LICENSE, NOT_EVALUATED, NOT_RECORDED
from hf_margin.models._model_card import backbone_name

# head_type -> (method name, paper title, arXiv id), as in the catalogue entry of the head (the combined margin is
# ArcFace's section on m1, m2, m3). Library code does not read the catalogue; tests/models checks they agree.
HEAD_PAPERS: dict[str, tuple[str, str, str]] = {
    "arcface": ("ArcFace", "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", "1801.07698"),
    "combined": (
        "Combined margin (m1, m2, m3)",
        "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
        "1801.07698",
    ),
    "cosface": ("CosFace", "CosFace: Large Margin Cosine Loss for Deep Face Recognition", "1801.09414"),
    "elastic_arcface": (
        "ElasticArcFace (+)",
        "ElasticFace: Elastic Margin Loss for Deep Face Recognition",
        "2109.09416",
    ),
    "elastic_cosface": (
        "ElasticCosFace (+)",
        "ElasticFace: Elastic Margin Loss for Deep Face Recognition",
        "2109.09416",
    ),
    "adaface": ("AdaFace", "AdaFace: Quality Adaptive Margin for Face Recognition", "2204.00964"),
    "hyperspherical": (
        "Hyperspherical embedding (novel classes)",
        "Hyperspherical embedding for novel class classification",
        "2102.03243",
    ),
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
    "2102.03243": (
        "pereira2021hyperspherical",
        "Pereira, Rafael S. and Joly, Alexis and Valduriez, Patrick and Porto, Fabio",
        2021,
    ),
}


def head_paper(head_type: str) -> tuple[str, str, str]:
    """(head name, paper sentence with its arXiv link, citation block) of a `hf_margin.heads` head type."""
    if head_type not in HEAD_PAPERS:
        return "Softmax", "a linear softmax classifier without a margin (the baseline)", "No paper: no margin."
    method, title, arxiv = HEAD_PAPERS[head_type]
    key, authors, year = _BIBTEX[arxiv]
    bibtex = (
        f"```bibtex\n@article{{{key},\n  title   = {{{title}}},\n  author  = {{{authors}}},\n"
        f"  journal = {{arXiv preprint arXiv:{arxiv}}},\n  year    = {{{year}}}\n}}\n```"
    )
    return method, f"{title} ([arXiv {arxiv}](https://arxiv.org/abs/{arxiv}))", bibtex


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
