"""SHAP values of a fused model's inputs, feature by feature and summed per modality.

:func:`modality_attribution` (captum) asks how much each *modality* moved a prediction. SHAP
(Lundberg & Lee 2017), through the ``shap`` package's model-agnostic permutation explainer,
goes one level down: every input column of the fusion model (image features, text features,
clinical variables) gets a value, and a modality's share is the sum over its columns. The
explained output is the fused model's logit; features are "removed" by replacing them with
values of a background sample of training patients (``shap.maskers.Independent``).

Only patients with every modality are explained: a masked block has no feature values to
attribute (its absence is a mask entry, not a value).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .data import MultimodalDataset
from .model import MultimodalModel

__all__ = ["fusion_shap_values", "shap_by_modality"]


def _flat(dataset: MultimodalDataset) -> tuple[np.ndarray, list[str], list[str]]:
    names, groups = [], []
    for block in dataset.block_names:
        n = dataset.values[block].shape[1]
        names += [f"{block}:{i}" for i in range(n)]
        groups += [block] * n
    return np.concatenate([dataset.values[b] for b in dataset.block_names], axis=1), names, groups


def fusion_shap_values(
    model: MultimodalModel,
    explain: MultimodalDataset,
    background: MultimodalDataset,
    *,
    feature_names: dict[str, list[str]] | None = None,
    max_background: int = 50,
    seed: int = 0,
) -> Any:
    """SHAP values of ``model``'s logit for the complete samples of ``explain``.

    Parameters
    ----------
    model : MultimodalModel
        A one-output model (binary logit or Cox log-hazard).
    explain, background : MultimodalDataset
        Samples to explain, and (training) samples whose values stand in for a removed feature;
        only those with every block are used.
    feature_names : dict of block name to column names, optional
        Default ``"<block>:<i>"``.
    max_background : int, default 50
    seed : int, default 0

    Returns
    -------
    shap.Explanation
        ``values`` (n, features), ``data``, ``feature_names``; ``explanation.groups`` lists
        each column's modality and ``explanation.sample_ids`` the patients explained.

    Notes
    -----
    The model is evaluated on the CPU (it is moved there, in evaluation mode): the explainer
    calls it on many small batches, where a GPU gains nothing.
    """
    import shap

    if model.n_outputs != 1:
        raise ValueError("fusion_shap_values explains one-output models (a binary logit or a log-hazard)")
    complete = [np.flatnonzero(d.mask.all(axis=1)) for d in (explain, background)]
    if not all(len(c) for c in complete):
        raise ValueError("both datasets need samples with every modality")
    explain, background = explain.subset(complete[0]), background.subset(complete[1])
    x, names, groups = _flat(explain)
    x_background, _, _ = _flat(background)
    if feature_names:
        names = [n for b in explain.block_names for n in feature_names[b]]
    bounds = np.cumsum([0] + [explain.values[b].shape[1] for b in explain.block_names])
    model = model.cpu().eval()

    def logit(rows: np.ndarray) -> np.ndarray:
        rows = torch.as_tensor(np.asarray(rows, dtype=np.float32))
        inputs = {b: rows[:, bounds[i] : bounds[i + 1]] for i, b in enumerate(explain.block_names)}
        inputs["mask"] = torch.ones(len(rows), len(explain.block_names))
        with torch.no_grad():
            return model(inputs)[:, 0].numpy()

    rng = np.random.default_rng(seed)
    chosen = x_background[rng.permutation(len(x_background))[:max_background]]
    explainer = shap.PermutationExplainer(logit, shap.maskers.Independent(chosen, max_samples=len(chosen)), seed=seed)
    explanation = explainer(x, max_evals=2 * x.shape[1] + 1, silent=True)
    explanation.feature_names = names
    explanation.groups = groups
    explanation.sample_ids = explain.sample_ids
    return explanation


def shap_by_modality(explanation: Any) -> pd.DataFrame:
    """Per patient, the SHAP values summed over each modality's columns (patients x modalities)."""
    values = pd.DataFrame(explanation.values, columns=explanation.feature_names, index=explanation.sample_ids)
    return values.T.groupby(np.asarray(explanation.groups)).sum().T
