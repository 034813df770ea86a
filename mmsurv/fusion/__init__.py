"""Multimodal fusion: per-modality encoders, fusion operators, one model, its training and explanations.

Each modality (a table of genes, a slide's embedding, a report's text embedding, clinical
variables) is a *block*. Samples may lack blocks; a modality *mask* says which they have, and
everything here - dataset, operators, model, attribution - obeys it.

Modules
-------
data         MultimodalDataset: blocks of tables -> per-sample tensors and the modality mask
encoders     TabularEncoder (SNN or MLP), BagEncoder (attention pooling of tiles)
operators    concat, gated-attention, Kronecker and late fusion
model        MultimodalModel: encoders + fusion + head, with modality dropout
losses       cox_loss (torchsurv's partial likelihood, safe on batches without events)
discrete_time  time bins, discrete_time_nll, survival curves: task "discrete_survival" (PORPOISE's survival head)
train        fit_fusion (tasks multiclass, binary, cox, discrete_survival; when to use which: its notes), predict_fusion, embed_fusion
ensemble     fit_fusion_ensemble, predict_ensemble: binary ensembles keyed by patient id (notebooks 04, 05);
             fit_survival_ensemble, predict_survival_ensemble: their discrete-time survival counterparts
attribution  modality_attribution: Shapley values of the modalities (captum)
shap_values  fusion_shap_values, shap_by_modality: SHAP values of every input column (shap), per modality
"""

from __future__ import annotations

from .attribution import modality_attribution
from .data import MultimodalDataset
from .discrete_time import TimeBins, curves_on_grid, discrete_time_nll, fit_time_bins, risk_from_curves, survival_curves
from .encoders import ENCODERS, BagEncoder, TabularEncoder
from .ensemble import fit_fusion_ensemble, fit_survival_ensemble, predict_ensemble, predict_survival_ensemble
from .losses import cox_loss
from .model import MultimodalModel
from .operators import FUSIONS, ConcatFusion, GatedAttentionFusion, KroneckerFusion, LateFusion
from .shap_values import fusion_shap_values, shap_by_modality
from .train import TASKS, embed_fusion, fit_fusion, predict_fusion

__all__ = [
    "ENCODERS",
    "FUSIONS",
    "TASKS",
    "BagEncoder",
    "ConcatFusion",
    "GatedAttentionFusion",
    "KroneckerFusion",
    "LateFusion",
    "MultimodalDataset",
    "MultimodalModel",
    "TabularEncoder",
    "TimeBins",
    "cox_loss",
    "curves_on_grid",
    "discrete_time_nll",
    "embed_fusion",
    "fit_fusion",
    "fit_fusion_ensemble",
    "fit_survival_ensemble",
    "fit_time_bins",
    "predict_ensemble",
    "fusion_shap_values",
    "shap_by_modality",
    "modality_attribution",
    "predict_fusion",
    "predict_survival_ensemble",
    "risk_from_curves",
    "survival_curves",
]
