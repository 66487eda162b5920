"""Stateful loss modules (their math lives in `hf_margin.functional`)."""

from hf_margin.losses.adaptive_margin_triplet import AdaptiveMarginTripletLoss
from hf_margin.losses.aggregate_responses import AggregateResponseLoss, bag_dataset
from hf_margin.losses.anyloss import AnyLoss
from hf_margin.losses.auc_margin import AUCMarginLoss
from hf_margin.losses.comp_sum import CompSumLoss
from hf_margin.losses.crps import AFCRPSLoss
from hf_margin.losses.dual_head_kd import DualHeadKDLoss
from hf_margin.losses.few_shot import ICNNLoss, ProtoTripletLoss
from hf_margin.losses.focal import FocalLoss
from hf_margin.losses.landmark_kd import LandmarkKDLoss
from hf_margin.losses.ldam import LDAMLoss, MultiLabelLDAMLoss
from hf_margin.losses.ldr import ALDRKLLoss, LDRKLLoss
from hf_margin.losses.metric_learning import MetricLossBase, PairBatch
from hf_margin.losses.multi_similarity import MultiSimilarityLoss, MultiSimilarityMiner
from hf_margin.losses.tcm import ThresholdConsistentMarginLoss
from hf_margin.losses.temperature_info_nce import TemperatureInfoNCELoss
from hf_margin.losses.unpg import UNPGLoss
from hf_margin.losses.z_loss import LogitZLoss, ZLoss

__all__ = [
    "AFCRPSLoss",
    "ALDRKLLoss",
    "AUCMarginLoss",
    "AdaptiveMarginTripletLoss",
    "AggregateResponseLoss",
    "AnyLoss",
    "CompSumLoss",
    "DualHeadKDLoss",
    "FocalLoss",
    "ICNNLoss",
    "LDAMLoss",
    "LDRKLLoss",
    "LandmarkKDLoss",
    "LogitZLoss",
    "MetricLossBase",
    "MultiLabelLDAMLoss",
    "MultiSimilarityLoss",
    "MultiSimilarityMiner",
    "PairBatch",
    "ProtoTripletLoss",
    "TemperatureInfoNCELoss",
    "ThresholdConsistentMarginLoss",
    "UNPGLoss",
    "ZLoss",
    "bag_dataset",
]
