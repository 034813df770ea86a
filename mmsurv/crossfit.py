"""Cross-fitted (out-of-fold) features: what a learned feature looks like on patients it never saw.

A network trained on some patients describes *those* patients better than it will ever describe
a new one: its features (or its predictions) are over-fitted on them. A second model stacked on
those features - a fusion head, a stacker - then learns to trust the first model as much as it
deserved on its own training patients, which is more than it deserves on new ones. Cross-fitting
removes the bias: the training patients are split into K folds *by patient*, a network is fitted
K times, each time without one fold, and each fold's features come from the network that never
saw it. Held-out patients (test, external) get the features of a network fitted on all training
patients, as they would without cross-fitting.

Features of different networks do not share coordinates (unit 3 of one network's bottleneck
means nothing in another's), so what is cross-fitted is something whose meaning every fold's
network shares: its *prediction* (a logit, class log-probabilities), not its hidden layer.

References
----------
Wolpert D. H. "Stacked generalization." Neural Networks 5(2), 1992.
Chernozhukov V. et al. "Double/debiased machine learning for treatment and structural
parameters." The Econometrics Journal 21(1), 2018 (cross-fitting).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

__all__ = ["CrossFitted", "cross_fit", "patient_folds"]


def patient_folds(
    ids: Sequence[Any],
    *,
    n_folds: int,
    seed: int,
    strata: Mapping[Any, Any] | pd.Series | None = None,
    patient_of: Mapping[Any, Any] | pd.Series | None = None,
) -> pd.Series:
    """Assign ``ids`` to ``n_folds`` folds, every id of one patient in the same fold.

    Parameters
    ----------
    ids : sequence
        The rows to split (patients, or sample units of patients).
    n_folds : int
        Number of folds, at least 2.
    seed : int
        Drives the assignment.
    strata : mapping or Series, optional
        A class per id (e.g. the label); the folds keep its proportions as far as the patient
        grouping allows. Missing: one stratum.
    patient_of : mapping or Series, optional
        The patient of each id. Missing: each id is its own patient.

    Returns
    -------
    Series
        The fold (0 .. n_folds - 1) of each id, indexed by id.

    Raises
    ------
    ValueError
        Fewer patients than folds, or ``n_folds`` below 2.
    """
    ids = list(ids)
    if n_folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got n_folds={n_folds}")
    groups = np.array([patient_of[i] if patient_of is not None else i for i in ids], dtype=object)
    n_patients = len(set(groups.tolist()))
    if n_patients < n_folds:
        raise ValueError(f"cross-fitting: {n_patients} patients cannot fill {n_folds} folds")
    y = np.array([strata[i] if strata is not None else 0 for i in ids], dtype=object).astype(str)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold = np.empty(len(ids), dtype=int)
    for k, (_, rows) in enumerate(splitter.split(np.zeros(len(ids)), y, groups)):
        fold[rows] = k
    return pd.Series(fold, index=ids, name="fold")


@dataclass
class CrossFitted:
    """Out-of-fold features of the training ids, and the full model's features of the others.

    Attributes
    ----------
    features : DataFrame
        One row per id: training ids from the fold model that did not see them, held-out ids
        from the model fitted on all training ids.
    folds : Series
        The fold of each training id.
    fold_models : list
        The K fold models (model k never saw fold k).
    full_model : object
        The model fitted on all training ids.
    in_sample : DataFrame
        The full model's features of *every* id, training ids included: what stacking would use
        without cross-fitting (for comparison only).
    """

    features: pd.DataFrame
    folds: pd.Series
    fold_models: list[Any] = field(repr=False)
    full_model: Any = field(repr=False)
    in_sample: pd.DataFrame = field(repr=False)


def cross_fit(
    fit: Callable[[list[Any], str], Any],
    features: Callable[[Any, list[Any]], pd.DataFrame],
    train_ids: Sequence[Any],
    other_ids: Sequence[Any],
    folds: pd.Series,
    *,
    full_model: Any = None,
    step: str = "model",
    progress: Callable[[str], None] | None = None,
) -> CrossFitted:
    """Fit one model per fold without that fold, and one on all training ids; collect features.

    Parameters
    ----------
    fit : callable
        ``fit(ids, step) -> model``: fits a model on ``ids`` only (the callable may split them
        further, e.g. into fitting and early-stopping patients) and records them in a fit
        ledger under ``step`` if it keeps one. Called with ``step`` = ``"<step> (fold k)"``
        for each fold and ``"<step>"`` for the full model.
    features : callable
        ``features(model, ids) -> DataFrame`` indexed by id: the model's features of ``ids``.
    train_ids : sequence
        The ids cross-fitted (every one must have a fold).
    other_ids : sequence
        Held-out ids: scored by the full model only.
    folds : Series
        Fold of each training id, from :func:`patient_folds`.
    full_model : object, optional
        A model already fitted on all training ids (reused instead of fitting another).
    step : str
        Name of the fitting step.
    progress : callable, optional
        Called with a short message before each fit.

    Returns
    -------
    CrossFitted
    """
    train_ids = list(train_ids)
    missing = [i for i in train_ids if i not in folds.index]
    if missing:
        raise ValueError(f"cross-fitting: {len(missing)} training ids have no fold, e.g. {missing[:3]}")
    fold_models, parts = [], []
    for k in sorted(folds.loc[train_ids].unique()):
        kept = [i for i in train_ids if folds[i] != k]
        left_out = [i for i in train_ids if folds[i] == k]
        if progress is not None:
            progress(f"{step}: fold {k + 1} of {folds.nunique()} ({len(kept)} fitted, {len(left_out)} left out)")
        model = fit(kept, f"{step} (fold {k + 1})")
        fold_models.append(model)
        parts.append(features(model, left_out))
    if full_model is None:
        if progress is not None:
            progress(f"{step}: all {len(train_ids)} training ids")
        full_model = fit(train_ids, step)
    training = set(train_ids)
    held_out = [i for i in other_ids if i not in training]
    everyone = train_ids + held_out
    in_sample = features(full_model, everyone)
    out = pd.concat([*parts, in_sample.loc[held_out]])
    return CrossFitted(features=out.loc[everyone], folds=folds.loc[train_ids], fold_models=fold_models, full_model=full_model, in_sample=in_sample)
