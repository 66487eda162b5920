"""The catalogue: one entry per method of the source papers, with where it lives and how far it has come.

`hf-margin list` prints it, the README's method table is generated from it, and `tests/test_catalogue.py`
walks it: every implemented entry imports, names its tests, and has a demo or benchmark entry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["loss", "head", "trainer", "PEFT method", "model", "metric", "diagnostic", "utility"]
Status = Literal["implemented", "planned", "out of scope"]


@dataclass(frozen=True)
class Method:
    """One catalogue entry.

    Args:
        name: short identifier (used by `hf-margin list` and demo/benchmark names).
        method: the method's usual name.
        title: the paper's title.
        arxiv: the paper's arXiv id, when it has one.
        kind: what a user plugs in: loss, head, trainer, PEFT method, model, metric, diagnostic or utility.
        entry_point: the import path of the object a user calls (planned ones: where it will live).
        status: implemented, planned, or out of scope.
        issue: the issue topic that builds it.
        reason: why it is out of scope, or what part of the paper is left out.
        tests: test files that check it (implemented entries).
        demo: the `hf-margin demo` entry that runs it on real data, if any.
        benchmark: the `benchmarks/` script that times it against its anchor, if any.
    """

    name: str
    method: str
    title: str
    arxiv: str | None
    kind: Kind
    entry_point: str
    status: Status = "planned"
    issue: str = ""
    reason: str = ""
    tests: tuple[str, ...] = ()
    demo: str | None = None
    benchmark: str | None = None

    def load(self) -> Any:
        """Import and return the entry point (implemented entries only)."""
        module_name, _, attribute = self.entry_point.rpartition(".")
        return getattr(importlib.import_module(module_name), attribute)


_FACE = "foundation"
_EMBEDDING_TESTS = (
    "tests/embeddings/test_margin_embedding_loss.py",
    "tests/functional/test_contrastive.py",
    "tests/demo/test_embedding_demo.py",
)
_HEAD_TESTS = ("tests/heads/test_margin_heads.py", "tests/heads/test_anchor_pml.py")

CATALOGUE: tuple[Method, ...] = (
    # Face-recognition margin heads (foundation issue).
    Method(
        "arcface",
        "ArcFace",
        "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
        "1801.07698",
        "head",
        "hf_margin.heads.ArcFaceHead",
        "implemented",
        _FACE,
        tests=_HEAD_TESTS,
        demo="margin_heads",
        benchmark="benchmarks/bench_margin_heads.py",
    ),
    Method(
        "combined_margin",
        "Combined margin (m1, m2, m3)",
        "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
        "1801.07698",
        "head",
        "hf_margin.heads.CombinedMarginHead",
        "implemented",
        _FACE,
        tests=("tests/heads/test_margin_heads.py",),
        benchmark="benchmarks/bench_margin_heads.py",
    ),
    Method(
        "cosface",
        "CosFace",
        "CosFace: Large Margin Cosine Loss for Deep Face Recognition",
        "1801.09414",
        "head",
        "hf_margin.heads.CosFaceHead",
        "implemented",
        _FACE,
        tests=_HEAD_TESTS,
        demo="margin_heads",
        benchmark="benchmarks/bench_margin_heads.py",
    ),
    Method(
        "elastic_arcface",
        "ElasticArcFace (+)",
        "ElasticFace: Elastic Margin Loss for Deep Face Recognition",
        "2109.09416",
        "head",
        "hf_margin.heads.ElasticArcFaceHead",
        "implemented",
        _FACE,
        tests=("tests/heads/test_margin_heads.py",),
        demo="margin_heads",
    ),
    Method(
        "elastic_cosface",
        "ElasticCosFace (+)",
        "ElasticFace: Elastic Margin Loss for Deep Face Recognition",
        "2109.09416",
        "head",
        "hf_margin.heads.ElasticCosFaceHead",
        "implemented",
        _FACE,
        tests=("tests/heads/test_margin_heads.py",),
        demo="margin_heads",
    ),
    Method(
        "adaface",
        "AdaFace",
        "AdaFace: Quality Adaptive Margin for Face Recognition",
        "2204.00964",
        "head",
        "hf_margin.heads.AdaFaceHead",
        "implemented",
        _FACE,
        tests=("tests/heads/test_margin_heads.py",),
        demo="margin_heads",
    ),
    # PEFT (PETAL issue).
    Method(
        "partial_fc",
        "Partial FC (sharded, sampled class centres)",
        "Partial FC: Training 10 Million Identities on a Single Machine",
        "2010.05222",
        "head",
        "hf_margin.heads.PartialFCHead",
        "implemented",
        "recipes and multi-process",
        reason="Our own code: class centres sharded by contiguous rank range, every positive plus a random sample_rate "
        "share of negatives, a cross-entropy over all shards from all-reduced max and sum-exp; any cosine margin "
        "head's target. Logits in float32 (insightface uses fp16); unsampled centres get a zero gradient; do not "
        "wrap the head in DDP (wrap the backbone: its DDP-averaged gradient equals one process's full batch).",
        tests=("tests/heads/test_partial_fc.py",),
        benchmark="benchmarks/bench_partial_fc.py",
    ),
    Method(
        "petal",
        "PETAL (quality-gated dual LoRA)",
        "PETALface: Parameter Efficient Transfer Learning for Low-resolution Face Recognition",
        "2412.07771",
        "PEFT method",
        "hf_margin.tuners.petal.PetalConfig",
        "implemented",
        "PETAL",
        tests=("tests/tuners/test_petal.py", "tests/tuners/test_petal_multiprocess.py"),
        demo="petal",
        benchmark="benchmarks/bench_petal.py",
    ),
    Method(
        "petal_quality",
        "Image-quality scores for PETAL",
        "PETALface: Parameter Efficient Transfer Learning for Low-resolution Face Recognition",
        "2412.07771",
        "utility",
        "hf_margin.tuners.petal.quality.sharpness_score",
        "implemented",
        "PETAL",
        reason="BRISQUE is not shipped: it needs an SVR fitted on LIVE, and no installable implementation works here",
        tests=("tests/data/test_quality.py",),
        demo="petal",
    ),
    # Preference optimisation (MADPO and gradient-entanglement issues).
    Method(
        "madpo",
        "MADPO",
        "Margin-Adaptive Direct Preference Optimization",
        "2510.05342",
        "trainer",
        "hf_margin.trainers.madpo_trainer.MADPOTrainer",
        "implemented",
        "MADPO",
        tests=(
            "tests/trainers/test_madpo_trainer.py",
            "tests/functional/test_preference.py",
            "tests/trainers/test_madpo_multiprocess.py",
        ),
        demo="madpo",
        benchmark="benchmarks/bench_madpo.py",
    ),
    Method(
        "gradient_entanglement",
        "Gradient-entanglement diagnostics",
        "A Common Pitfall of Margin-based Language Model Alignment: Gradient Entanglement",
        "2410.13828",
        "diagnostic",
        "hf_margin.callbacks.GradientEntanglementCallback",
        "implemented",
        "gradient entanglement",
        reason="the paper's mitigation update is not published; the normalised-pair mode is our derivation",
        tests=(
            "tests/callbacks/test_gradient_entanglement_callback.py",
            "tests/diagnostics/test_gradient_entanglement.py",
        ),
        demo="madpo",
        benchmark="benchmarks/bench_gradient_entanglement.py",
    ),
    # Embedding training (embedding issue).
    Method(
        "kalm_focal_mixing",
        "Focal InfoNCE + online hard-negative mixing",
        "KaLM-Embedding-V2: Superior Training Techniques and Data Inspire A Versatile Embedding Model",
        "2506.20923",
        "loss",
        "hf_margin.embeddings.MarginEmbeddingLoss",
        "implemented",
        "embedding",
        reason="Not pinned down by the paper (our documented options): whether the focal weight is detached, gamma, "
        "the number of mixed negatives, how pairs are chosen, the list-mix weights; model soup is out of scope.",
        tests=_EMBEDDING_TESTS,
        demo="embedding",
        benchmark="benchmarks/bench_embedding.py",
    ),
    Method(
        "lg_anna_filtering",
        "Margin-based false-negative filtering + soft labels",
        "LG-ANNA-Embedding technical report (v2: LGAI-Embedding-Preview Technical Report)",
        "2506.07438",
        "loss",
        "hf_margin.embeddings.MarginEmbeddingLoss",
        "implemented",
        "embedding",
        reason="The soft-label loss is not given by the paper: ours is KL(teacher || student), labelled as our "
        "choice; the filter follows NV-Retriever's direction (the paper's text has the inequality flipped); the "
        "in-context examples and the ANNA IR teacher pipeline are out of scope.",
        tests=_EMBEDDING_TESTS,
        demo="embedding",
        benchmark="benchmarks/bench_embedding.py",
    ),
    # TransICD and LDAM (TransICD issue).
    Method(
        "transicd",
        "TransICD code-wise attention",
        "TransICD: Transformer Based Code-wise Attention Model for Explainable ICD Coding",
        "2104.10652",
        "model",
        "hf_margin.models.transicd.TransICDModel",
        "implemented",
        "TransICD",
        reason="MIMIC-III is not installable here: the real run uses ICD-10-CM pseudo-notes; the official code's "
        "positional-encoding bug is not reproduced; frozen word2vec embeddings are replaced by trained ones",
        tests=("tests/models/test_transicd.py", "tests/models/test_transicd_multiprocess.py"),
        demo="transicd",
        benchmark="benchmarks/bench_transicd.py",
    ),
    Method(
        "ldam",
        "LDAM loss (multi-label and single-label)",
        "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
        "1906.07413",
        "loss",
        "hf_margin.losses.LDAMLoss",
        "implemented",
        "TransICD",
        reason="the TransICD demo and recipes run the multi-label form; the imbalance demo and recipes the "
        "single-label form (LDAM-DRW)",
        tests=("tests/functional/test_ldam.py",),
        demo="transicd",
    ),
    Method(
        "drw",
        "Deferred re-weighting (DRW)",
        "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
        "1906.07413",
        "utility",
        "hf_margin.callbacks.DRWCallback",
        "implemented",
        "TransICD",
        reason="runs in the TransICD recipes (method 'TransICD + DRW') and in the imbalance demo and recipes "
        "(LDAM-DRW)",
        tests=("tests/models/test_transicd.py",),
        demo="transicd",
    ),
    # Distillation (Margin-MSE issue).
    Method(
        "margin_mse",
        "Margin-MSE distillation",
        "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation",
        "2010.02666",
        "trainer",
        "hf_margin.trainers.MarginMSETrainer",
        "implemented",
        "Margin-MSE",
        tests=("tests/trainers/test_margin_mse_trainer.py", "tests/functional/test_margin_mse.py"),
        demo="margin_mse",
        benchmark="benchmarks/bench_margin_mse.py",
    ),
    # Catalogue I: imbalance- and noise-robust classification losses.
    Method(
        "auc_margin",
        "AUC-margin (AUC-M)",
        "Large-scale Robust Deep AUC Maximization: A New Surrogate Loss and Empirical Studies on Medical "
        "Image Classification",
        "2012.03173",
        "loss",
        "hf_margin.losses.AUCMarginLoss",
        "implemented",
        "catalogue I",
        reason="PESG (LibAUC's optimizer) is not reimplemented: alpha ascends by gradient reversal under any "
        "optimizer and is projected to >= 0 after each step. v2 follows LibAUC's docstring; libauc_compat=True "
        "reproduces its code, which differs (see hf_margin.functional.auc_margin).",
        tests=(
            "tests/functional/test_auc_margin.py",
            "tests/losses/test_auc_margin_loss.py",
            "tests/trainers/test_classification_loss_trainer.py",
        ),
        demo="imbalance",
        benchmark="benchmarks/bench_classification_losses.py",
    ),
    Method(
        "anyloss",
        "AnyLoss",
        "AnyLoss: Transforming Classification Metrics into Loss Functions",
        "2405.14745",
        "loss",
        "hf_margin.losses.AnyLoss",
        "implemented",
        "catalogue I",
        reason="The paper is binary; the multi-class one-vs-rest macro average is our extension. MCC is not in the "
        "paper and is not offered.",
        tests=("tests/functional/test_anyloss.py", "tests/losses/test_anyloss_module.py"),
        demo="imbalance",
        benchmark="benchmarks/bench_classification_losses.py",
    ),
    Method(
        "comp_sum",
        "Comp-sum losses",
        "Cross-Entropy Loss Functions: Theoretical Analysis and Applications",
        "2304.07288",
        "loss",
        "hf_margin.losses.CompSumLoss",
        "implemented",
        "catalogue I",
        reason="The smooth adversarial comp-sum variant is left out: its extra term is not pinned down in our "
        "reference.",
        tests=("tests/functional/test_comp_sum.py", "tests/losses/test_comp_sum_module.py"),
        demo="imbalance",
        benchmark="benchmarks/bench_classification_losses.py",
    ),
    Method(
        "z_loss",
        "Z-loss (spherical family)",
        "The Z-loss: a shift and scale invariant classification loss belonging to the Spherical Family",
        "1604.08859",
        "loss",
        "hf_margin.losses.ZLoss",
        "implemented",
        "catalogue I",
        reason="The paper tunes a and b per task and gives no defaults: both are required arguments. The "
        "unrelated log-partition penalty of PaLM / ST-MoE is LogitZLoss.",
        tests=("tests/functional/test_z_loss.py", "tests/losses/test_z_loss_module.py"),
        benchmark="benchmarks/bench_classification_losses.py",
    ),
    Method(
        "ldr_kl",
        "LDR-KL / ALDR-KL",
        "Label Distributionally Robust Losses for Multi-class Classification: Consistency, Robustness and Adaptivity",
        "2112.14869",
        "loss",
        "hf_margin.losses.ALDRKLLoss",
        "implemented",
        "catalogue I",
        reason="The paper's parameterisation of the lambda regulariser was not found; the per-example update "
        "follows the official code's closed form, and the modules rescale logits as the code does (softplus / L1).",
        tests=(
            "tests/functional/test_ldr.py",
            "tests/losses/test_classification_losses.py",
            "tests/trainers/test_classification_loss_trainer.py",
        ),
        demo="imbalance",
        benchmark="benchmarks/bench_classification_losses.py",
    ),
    Method(
        "generalized_focal",
        "DatasetEquity generalized focal loss",
        "DatasetEquity: Are All Samples Created Equal? In The Quest For Equity Within Datasets",
        "2308.09878",
        "utility",
        "hf_margin.losses.equity.add_equity_weights",
        "implemented",
        "catalogue I",
        reason="A per-example weight column (any sample_weight-aware loss uses it); features from any backbone "
        "instead of the paper's ImageNet ResNet-101.",
        tests=(
            "tests/data/test_equity.py",
            "tests/functional/test_focal.py",
            "tests/trainers/test_classification_loss_trainer.py",
        ),
        demo="imbalance",
        benchmark="benchmarks/bench_classification_losses.py",
    ),
    Method(
        "focal",
        "Focal loss (and class-balanced weights)",
        "Focal Loss for Dense Object Detection",
        "1708.02002",
        "loss",
        "hf_margin.losses.FocalLoss",
        "implemented",
        "catalogue I",
        reason="The baseline the imbalance papers compare with; class-balanced weights are Cui et al.'s effective "
        "number (arXiv 1901.05555).",
        tests=(
            "tests/functional/test_focal.py",
            "tests/losses/test_classification_losses.py",
            "tests/trainers/test_classification_loss_trainer.py",
        ),
        demo="imbalance",
        benchmark="benchmarks/bench_classification_losses.py",
    ),
    Method(
        "logit_z_loss",
        "Log-partition penalty (PaLM / ST-MoE 'z-loss')",
        "PaLM: Scaling Language Modeling with Pathways",
        "2204.02311",
        "loss",
        "hf_margin.losses.LogitZLoss",
        "implemented",
        "catalogue I",
        reason="Named apart from the Z-loss above on purpose: coefficient x logsumexp(logits)^2, label-free.",
        tests=("tests/functional/test_z_loss.py", "tests/losses/test_z_loss_module.py"),
        benchmark="benchmarks/bench_classification_losses.py",
    ),
    # Catalogue II: metric learning, contrastive, distillation, probabilistic, adversarial.
    Method(
        "multi_similarity",
        "Multi-Similarity loss + miner",
        "Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning",
        "1904.06627",
        "loss",
        "hf_margin.losses.MultiSimilarityLoss",
        "implemented",
        "catalogue II",
        reason="PML's defaults (alpha 2, beta 50, base 0.5, epsilon 0.1); the paper uses lambda 1, the official code "
        "lambda 0.5 and beta 40. Self-pairs are excluded by index, not by the official code's S >= 1 - 1e-5 rule; "
        "unlike PML 2.9.0, a tuple with at most one pair of each kind gets its real loss, not PML's early-exit 0.",
        tests=("tests/losses/test_multi_similarity.py", "tests/losses/test_metric_learning_multiprocess.py"),
        demo="metric_learning",
        benchmark="benchmarks/bench_metric_learning.py",
    ),
    Method(
        "tcm",
        "Threshold-Consistent Margin loss",
        "Threshold-Consistent Margin Loss for Open-World Deep Metric Learning",
        "2307.04047",
        "loss",
        "hf_margin.losses.ThresholdConsistentMarginLoss",
        "implemented",
        "catalogue II",
        reason="The official code is not available: PML's formula and defaults are the reference. Supports ref_emb "
        "(PML 2.9.0 raises IndexError there); cosine only; a pair listed twice counts once; the paper's per-dataset "
        "hyperparameters are not verified.",
        tests=("tests/losses/test_tcm.py", "tests/losses/test_metric_learning_multiprocess.py"),
        demo="metric_learning",
        benchmark="benchmarks/bench_metric_learning.py",
    ),
    Method(
        "opis",
        "OPIS / epsilon-OPIS threshold-consistency metric",
        "Threshold-Consistent Margin Loss for Open-World Deep Metric Learning",
        "2307.04047",
        "metric",
        "hf_margin.metrics.opis",
        "implemented",
        "catalogue II",
        reason="Our documented reading, not a primary source: per-class utility = harmonic mean of TPR and TNR, "
        "calibration range from a global FAR range (default 1e-2 to 1e-1, after a third-party description), 101 "
        "thresholds, variance across classes averaged over the range; epsilon-OPIS (best vs worst epsilon share of "
        "classes, ranked per threshold by default or once by mean utility: `ranking=`) is our reading of a recalled "
        "definition and has no default epsilon.",
        tests=("tests/metrics/test_opis.py",),
        demo="metric_learning",
    ),
    Method(
        "unpg",
        "UNPG (unified negative pair generation)",
        "Unified Negative Pair Generation toward Well-discriminative Feature Space for Face Recognition",
        "2203.11593",
        "loss",
        "hf_margin.losses.UNPGLoss",
        "implemented",
        "catalogue II",
        reason="Wraps any cosine margin head (ArcFace, CosFace, combined, ElasticFace, AdaFace); index-based "
        "quartiles int(0.25 l) / int(0.75 l) as the official code, whisker 1.5; the appended pairs enter as one "
        "log-sum-exp; negative pairs come from the local batch (not gathered across processes).",
        tests=("tests/functional/test_unpg.py", "tests/losses/test_unpg_loss.py"),
        demo="contrastive",
    ),
    Method(
        "proto_triplet",
        "Proto-Triplet loss",
        "SuSana Distancia is all you need: Enforcing class separability in metric learning via two novel "
        "distance-based loss functions for few-shot image classification",
        "2305.09062",
        "loss",
        "hf_margin.losses.ProtoTripletLoss",
        "implemented",
        "catalogue II",
        reason="Margin 0.5 and d = sqrt(sum of squares + 1e-6), as the official code.",
        tests=("tests/functional/test_few_shot.py", "tests/losses/test_few_shot_losses.py"),
        demo="few_shot",
    ),
    Method(
        "icnn",
        "ICNN loss",
        "SuSana Distancia is all you need: Enforcing class separability in metric learning via two novel "
        "distance-based loss functions for few-shot image classification",
        "2305.09062",
        "loss",
        "hf_margin.losses.ICNNLoss",
        "implemented",
        "catalogue II",
        reason="The official code's quirks are options: drop_nearest (with an external reference set the nearest "
        "reference point is dropped, e.g. the nearest prototype), clamp_k (k = |T| - 2 when k + 2 >= |T|). Own "
        "choices: exact Euclidean distances (the code uses sqrt(d^2 + 1e-6) and +1e-7 denominators; measured "
        "difference 3e-8), a mean over no rows is 0.",
        tests=("tests/functional/test_few_shot.py", "tests/losses/test_few_shot_losses.py"),
        demo="few_shot",
    ),
    Method(
        "m2fnet_triplet",
        "Adaptive-margin triplet loss",
        "M2FNet: Multi-modal Fusion Network for Emotion Recognition in Conversation",
        "2206.02187",
        "loss",
        "hf_margin.losses.AdaptiveMarginTripletLoss",
        "implemented",
        "catalogue II",
        reason="The feature-extractor loss of Eqs. (9)-(13) only (not the fusion network). Ours: the default hinges "
        "Eq. (10), detaches the margin and uses VICReg's hinged variance (the printed form, all three flags False, "
        "pulls far negatives in); eps = 1e-4; m_dissim's exponent capped at 80; triplets from labels are every "
        "(a, p, n) of the batch (the paper's FaceNet mining is not specified); fewer than two triplets give "
        "variance and covariance 0. No official code.",
        tests=("tests/functional/test_adaptive_margin_triplet.py", "tests/losses/test_adaptive_margin_triplet_loss.py"),
        demo="m2fnet_triplet",
    ),
    Method(
        "hyperspherical",
        "Hyperspherical embedding (novel classes)",
        "Hyperspherical embedding for novel class classification",
        "2102.03243",
        "head",
        "hf_margin.heads.HypersphericalHead",
        "implemented",
        "catalogue II",
        reason="From the authors' package pyopenset (the paper's text beyond the abstract was not read): s = 10, "
        "unit-norm class vectors, no bias, novel classes imprinted as normalised mean directions (joint: add_classes; "
        "disjoint: from_embeddings). Ours: the projection after each step is HypersphericalProjectionCallback "
        "(Trainer) or project_() (plain loops); init N(0, 1/D); add_classes refuses labels of existing classes. The "
        "paper's own s and schedule were not found.",
        tests=(
            "tests/functional/test_hyperspherical.py",
            "tests/heads/test_hyperspherical.py",
            "tests/callbacks/test_hyperspherical_projection_callback.py",
            "tests/models/test_margin_head_imprinting.py",
        ),
        demo="hyperspherical",
    ),
    Method(
        "gpam",
        "GPAM adaptive margin",
        "Few-shot Open Relation Extraction with Gaussian Prototype and Adaptive Margin",
        "2410.20320",
        "loss",
        "hf_margin.losses.GPAMLoss",
        "out of scope",
        "catalogue II",
        reason="Only the abstract could be read. Searched: GitHub repositories named GPAM / FsRE and the group's "
        "relation-extraction repository (another method); the code index for the paper's phrases and arXiv id (only "
        "paper lists); arXiv mirrors, HF papers, SSRN 5251204. Missing: the Gaussian-prototype estimate, the "
        "adaptive-margin formula, the NOTA boundary, the contrastive loss, negative sampling, every hyperparameter "
        "(need arXiv HTML v1 section 3 or the SSRN PDF).",
    ),
    Method(
        "contrastive_behaviour",
        "Temperature InfoNCE, uniformity and tolerance",
        "Understanding the Behaviour of Contrastive Loss",
        "2012.09740",
        "metric",
        "hf_margin.metrics.uniformity",
        "implemented",
        "catalogue II",
        reason="TemperatureInfoNCELoss (positive in the denominator, one term per positive pair: equal to PML's "
        "NTXentLoss), uniformity (Wang & Isola's definition), tolerance (mean same-class cosine; recalled, not "
        "checked against the paper) and EmbeddingGeometryCallback. The paper's hard-negative variant is left out: "
        "its K / alpha were not found.",
        tests=(
            "tests/metrics/test_embedding_geometry.py",
            "tests/callbacks/test_embedding_geometry_callback.py",
            "tests/demo/test_contrastive_demo.py",
        ),
        demo="contrastive",
    ),
    Method(
        "dual_head_kd",
        "Dual-Head KD (BinaryKL-Norm)",
        "Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an Auxiliary Head",
        "2411.08937",
        "loss",
        "hf_margin.losses.DualHeadKDLoss",
        "implemented",
        "catalogue II",
        reason="BinaryKL and BinaryKL-Norm computed exactly in log space (the code clamps probabilities to [1e-8, "
        "1 - 1e-8]; the two agree for |logit / T| < ~18). Gradient alignment projects the whole gradient vector "
        "(option: per parameter tensor), as a function (aligned_backward); DualHeadModel adds and drops the "
        "auxiliary head. Headline numbers were not available.",
        tests=(
            "tests/functional/test_dual_head_kd.py",
            "tests/losses/test_distillation_losses.py",
            "tests/models/test_dual_head.py",
        ),
        demo="distillation",
        benchmark="benchmarks/bench_distillation.py",
    ),
    Method(
        "margin_preserving",
        "Margin-preserving training + negative-flip rate",
        "Mitigating Negative Flips via Margin Preserving Training",
        "2511.08322",
        "trainer",
        "hf_margin.trainers.MarginPreservingTrainer",
        "implemented",
        "catalogue II",
        reason="Formulas from the official code (the paper's equations were not read). The README's 'logit-margin "
        "calibration variant' is an L2 logit-matching focal distillation in the code (distillation='l2'). Old "
        "classes must be the first C_old; NFR is counted on old-class samples as the official evaluation does, on "
        "every evaluated dataset and gathered across processes. "
        "ELODI / PCT baselines are left out.",
        tests=(
            "tests/trainers/test_margin_preserving_trainer.py",
            "tests/functional/test_negative_flips.py",
            "tests/metrics/test_negative_flips.py",
        ),
        demo="distillation",
    ),
    Method(
        "landmark_kd",
        "Assistive and KD losses with tolerant/tough teachers",
        "Facial Landmark Points Detection Using Knowledge Distillation-Based Neural Networks",
        "2111.07047",
        "loss",
        "hf_margin.losses.LandmarkKDLoss",
        "implemented",
        "catalogue II",
        reason="Formulas and defaults from the official TF code. No landmark data installs offline: the demo is a "
        "multi-output regression on real data (CO2 next weeks as coordinates) with both teachers trained there; the "
        "Tolerant teacher's soft targets are our PCA projection (the paper's ASM settings are not reproduced).",
        tests=(
            "tests/functional/test_landmark_kd.py",
            "tests/losses/test_distillation_losses.py",
            "tests/demo/test_landmark_distillation_demo.py",
        ),
        demo="landmark_distillation",
        benchmark="benchmarks/bench_distillation.py",
    ),
    Method(
        "afcrps",
        "Almost-fair CRPS",
        "AIFS-CRPS: Ensemble forecasting using a model trained with a loss function based on the Continuous "
        "Ranked Probability Score",
        "2412.15832",
        "loss",
        "hf_margin.losses.AFCRPSLoss",
        "implemented",
        "catalogue II",
        reason="Members along member_dim (last by default), M >= 2, alpha in [0, 1]; method 'sorted' (ours: O(M log "
        "M) time, O(M) memory, computed in float32 or float64) or 'pairwise' (the paper's eq. 4). crps (alpha 0) and "
        "fair_crps (alpha 1) alongside. The AIFS forecaster and its training schedule are out of scope.",
        tests=(
            "tests/functional/test_crps.py",
            "tests/losses/test_crps_loss.py",
            "tests/demo/test_probabilistic_demo.py",
        ),
        demo="probabilistic",
        benchmark="benchmarks/bench_crps.py",
    ),
    Method(
        "pma",
        "Probability-margin attack (PMA)",
        "Towards Million-Scale Adversarial Robustness Evaluation With Stronger Individual Attacks",
        "2411.15210",
        "metric",
        "hf_margin.metrics.pma_robust_accuracy",
        "implemented",
        "catalogue II",
        reason="PMA with the official code's schedule (two rounds per restart, objective p_y at step 0, then -p_y "
        "or p_max, then p_max - p_y from K/2; cosine steps from 2 epsilon; L-inf projection onto the ball and an "
        "optional box; early stop; at least 3 steps), plus a PGD-CE baseline at the same budget. PMA+ (with "
        "APGD-T), the paper's "
        "second ensemble (not found) and CC1M are left out.",
        tests=(
            "tests/functional/test_probability_margin.py",
            "tests/metrics/test_robustness.py",
            "tests/demo/test_robustness_demo.py",
        ),
        demo="robustness",
    ),
    # Catalogue III: diagnostics, self-training, probes and the rest.
    Method(
        "generalization_measures",
        "Margin-based generalization measures",
        "Fantastic Generalization Measures and Where to Find Them (Jiang et al.); Fantastic Generalization "
        "Measures are Nowhere to be Found (Gastpar et al.)",
        "1912.02178",
        "diagnostic",
        "hf_margin.callbacks.GeneralizationMeasuresCallback",
        "implemented",
        "catalogue III",
        reason="Jiang et al.'s output-margin family: gamma = |k-th smallest output margin| with k = max(1, m // 10) "
        "(smaller samples use their smallest margin: our choice); inverse margin, spectral and Frobenius norm "
        "products and sums with and without the margin, parameter norm, distances from initialisation, path-norm "
        "(over margin). Left out: folding BatchNorm, the exact FFT spectral norm of convolutions, the PAC-Bayes and "
        "sharpness measures. Correlational diagnostics, not guarantees (Gastpar et al., ICLR 2024).",
        tests=(
            "tests/diagnostics/test_generalization.py",
            "tests/callbacks/test_generalization_callback.py",
            "tests/demo/test_generalization_demo.py",
        ),
        demo="generalization",
    ),
    Method(
        "self_training",
        "Self-training with margin thresholds",
        "Self-Training: A Survey",
        "2202.12040",
        "trainer",
        "hf_margin.trainers.SelfTrainingLoop",
        "implemented",
        "catalogue III",
        reason="Margin = top-1 minus top-2 softmax probability (or raw logits: `score`). Thresholds: fixed, a "
        "per-round schedule, or a per-round share of the most confident remaining points (the survey does not pin "
        "the percentile step: user-set). Accepted pseudo-labels are fixed, not relabelled. The survey's automatic "
        "threshold (Feofanov et al.'s transductive bound) is left out: its formula was not found.",
        tests=("tests/trainers/test_self_training.py", "tests/demo/test_self_training_demo.py"),
        demo="self_training",
    ),
    Method(
        "generative_probe",
        "Gaussian naive-Bayes probe",
        "Revisiting Discriminative vs. Generative Classifiers: Theory and Implications",
        "2302.02334",
        "utility",
        "hf_margin.metrics.NaiveBayesProbe",
        "implemented",
        "catalogue III",
        reason="Shared-variance Gaussian naive Bayes as the paper's code (pooled within-class variance + 1e-9), a "
        "linear classifier in closed form (coef_, intercept_); fixed priors change only the intercept. learning_curve "
        "compares it with scikit-learn's LogisticRegression on min-max features; the paper's SGD logistic baseline "
        "is not included.",
        tests=("tests/metrics/test_generative_probe.py", "tests/demo/test_probes_demo.py"),
        demo="probes",
    ),
    Method(
        "aggregate_responses",
        "Bag-level / instance-level / interpolating loss",
        "Learning from Aggregate Responses: Instance Level versus Bag Level Loss Functions",
        "2401.11081",
        "loss",
        "hf_margin.losses.AggregateResponseLoss",
        "implemented",
        "catalogue III",
        reason="Square loss: bag-level, instance-level and interpolating. The paper's rho form was not found: our "
        "documented choice per row is (1 - rho)(mean y - mean f)^2 + rho (mean y - f_i)^2 (rho = 1: instance loss; "
        "rho = 0: bag loss). The differential-privacy mechanism was not found and is not implemented; no Trainer "
        "collator that keeps a bag in one batch yet.",
        tests=(
            "tests/functional/test_aggregate_responses.py",
            "tests/losses/test_aggregate_response_loss.py",
            "tests/demo/test_aggregate_demo.py",
        ),
        demo="aggregate",
    ),
    Method(
        "ignite",
        "IGNITE surrogate gradient-norm regulariser",
        "Incorporating Surrogate Gradient Norm to Improve Offline Optimization Techniques",
        "2503.04242",
        "utility",
        "hf_margin.trainers.IGNITETrainer",
        "implemented",
        "catalogue III",
        reason="Equations from the official code (the paper's full text was not read). The multiplier is clamped at "
        ">= 0 by default (the official code does not clamp: ignite_clamp_multiplier=False reproduces it); IGNITE-2 is "
        "ignite_update_multiplier=False. Our choices: G_B is the batch mean of the model's logits on the loss's own "
        "inputs (the code uses clean inputs for G_B, noisy ones for the loss); under gradient accumulation the "
        "penalty is divided like the loss and the dual step runs per micro-batch. Demo: a diabetes offline-"
        "optimisation task built like Design-Bench's Superconductor one (our choice of data, oracle and split; "
        "Design-Bench does not install here).",
        tests=(
            "tests/functional/test_ignite.py",
            "tests/trainers/test_ignite_trainer.py",
            "tests/demo/test_offline_optimization_demo.py",
        ),
        demo="offline_optimization",
        benchmark="benchmarks/bench_ignite.py",
    ),
    Method(
        "drm",
        "Domain-Specific Risk Minimization",
        "Domain-Specific Risk Minimization for Out-of-Distribution Generalization",
        "2208.08661",
        "model",
        "hf_margin.models.drm.DomainSpecificHeads",
        "implemented",
        "catalogue III",
        reason="From the official code (the paper's text was not read). Entropy-based head selection only (the "
        "code's nearest-neighbour and prototype selectors are left out). Steering keeps the code's quirks as "
        "options: the weighted sum skips the shared head while the weights are normalised over all heads; "
        "confidence is max softmax(p) by default (confidence='probability' uses max p); the caller's optimizer "
        "decides heads-only (DRM) or all parameters (DRMFull).",
        tests=("tests/models/test_drm.py", "tests/demo/test_drm_demo.py"),
        demo="drm",
    ),
    Method(
        "dcc",
        "Dataset condensation with contrastive signals",
        "Dataset Condensation with Contrastive Signals",
        "2202.02916",
        "utility",
        "hf_margin.trainers.condensation.condense",
        "implemented",
        "catalogue III",
        reason="DC and DCC gradient-matching losses, the layer-wise distance (1-D parameters count 0, +1e-6 in the "
        "cosine) and the bi-level warm-up, from the official code's equations. The loop leaves out DSA augmentation; a "
        "network update is one full-batch SGD step on the synthetic set; headline numbers not reproduced.",
        tests=(
            "tests/functional/test_gradient_matching.py",
            "tests/data/test_condensation.py",
            "tests/demo/test_condensation_demo.py",
        ),
        demo="condensation",
    ),
    Method(
        "ood_unlabeled",
        "Out-of-domain unlabeled data (DRO + self-training)",
        "Out-Of-Domain Unlabeled Data Improves Generalization",
        "2310.00027",
        "trainer",
        "hf_margin.trainers.RobustSelfTrainer",
        "implemented",
        "catalogue III",
        reason="Objective from the authors' poster (no code, and the paper's algorithm box and experiment values were "
        "not read). Ours: the inner sup is Sinha et al.'s gradient ascent (15 steps, step 1 / (2 gamma), squared "
        "Euclidean cost, a local maximum); pseudo-labels are the current model's stop-gradient predictions, "
        "recomputed every step; an optional warm start with lambda = 0; defaults gamma = gamma' = 1, lambda = 1. "
        "Demo: the poster's Gaussian mixture (d = 200, ramp loss) with a unit-norm linear score, AdamW, 200 steps, "
        "3 seeds: ERM 0.587 and ERM m = 10,000 0.834 match the poster; RSS 0.809 / 0.791 (alpha = 0 / 0.5) vs the "
        "poster's 0.82 / 0.81. The histopathology experiment is not reproduced.",
        tests=(
            "tests/functional/test_wasserstein_robust.py",
            "tests/trainers/test_robust_self_training.py",
            "tests/demo/test_ood_unlabeled_demo.py",
        ),
        demo="ood_unlabeled",
    ),
    Method(
        "modhifi",
        "ModHiFi subset fidelity",
        "ModHiFi: Identifying High Fidelity predictive components for Model Modification",
        "2511.19566",
        "utility",
        "hf_margin.diagnostics.modhifi_prune",
        "implemented",
        "catalogue III",
        reason="Subset fidelity, the compensation delta* (ridge 1e-4) and the singleton score (Eq. 3) in "
        "hf_margin.functional; Algorithm 1 on nn.Linear / nn.Conv2d inputs (ModHiFi-P prune with a removed fraction "
        "per step, ModHiFi-U unlearn by zeroing or negating; diagnostics.layer_fidelity for the scores). Ours: inputs "
        "ranked by max_c s_ci (= the top-k pairs rule), centring moves the removed mean into the layer's bias. Left "
        "out: residual-coupled channel groups, BatchNorm re-estimation, synthetic calibration data, fine-tuning, "
        "the LLM Cholesky-row heuristic (it reduces to sqrt(Q_ii + ridge); the general Eq. 3 score is used).",
        tests=(
            "tests/functional/test_subset_fidelity.py",
            "tests/diagnostics/test_modhifi.py",
            "tests/demo/test_modhifi_demo.py",
        ),
        demo="modhifi",
    ),
)


def by_name(name: str) -> Method:
    """The entry called `name`; a clear error listing the names otherwise."""
    for method in CATALOGUE:
        if method.name == name:
            return method
    raise KeyError(f"no catalogue entry named {name!r}; known: {', '.join(m.name for m in CATALOGUE)}")


def markdown_table(pages: str = "docs/methods/") -> str:
    """The catalogue as a markdown table; each implemented method links to its documentation page `<pages><name>.md`
    (the docs site's home page: ``methods/``) and names its entry point; the others give their status's reason."""
    lines = [
        "| method | paper | arXiv | kind | entry point | status |",
        "|---|---|---|---|---|---|",
    ]
    for m in CATALOGUE:
        arxiv = f"[{m.arxiv}](https://arxiv.org/abs/{m.arxiv})" if m.arxiv else "-"
        status: str = m.status
        if m.status == "implemented":
            method, entry_point = f"[{m.method}]({pages}{m.name}.md)", f"`{m.entry_point}`"
        else:  # not built: no entry point to name, and the reason with the status
            method, entry_point = m.method, "-"
            status = f"{m.status}: {m.reason}" if m.reason else m.status
        lines.append(f"| {method} | {m.title} | {arxiv} | {m.kind} | {entry_point} | {status} |")
    return "\n".join(lines)
