"""Stateful loss modules (their math lives in `hf_margin.functional`)."""

from hf_margin.losses.anyloss import AnyLoss
from hf_margin.losses.auc_margin import AUCMarginLoss
from hf_margin.losses.comp_sum import CompSumLoss
from hf_margin.losses.focal import FocalLoss
from hf_margin.losses.ldam import LDAMLoss, MultiLabelLDAMLoss
from hf_margin.losses.ldr import ALDRKLLoss, LDRKLLoss
from hf_margin.losses.z_loss import LogitZLoss, ZLoss

__all__ = [
    "ALDRKLLoss",
    "AUCMarginLoss",
    "AnyLoss",
    "CompSumLoss",
    "FocalLoss",
    "LDAMLoss",
    "LDRKLLoss",
    "LogitZLoss",
    "MultiLabelLDAMLoss",
    "ZLoss",
]
