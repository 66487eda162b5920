"""Stateful loss modules (their math lives in `hf_margin.functional`)."""

from hf_margin.losses.ldam import LDAMLoss, MultiLabelLDAMLoss

__all__ = ["LDAMLoss", "MultiLabelLDAMLoss"]
