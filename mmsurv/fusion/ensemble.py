"""Ensembles of fused models - binary classifiers, and discrete-time survival models - trained and scored by patient id.

With ~100 labelled patients one training of a fusion network depends on its initial weights;
the mean of a few trainings from different seeds much less. Notebooks 04 and 05 both need that
ensemble, its predictions, and a permuted control that retrains it on shuffled labels. Labels
travel as a Series indexed by patient id, never as an array split by position: a permuted
label then still belongs to the patient it was dealt to, whatever order the patients are in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..validation import labelled_ids
from .data import MultimodalDataset
from .discrete_time import TimeBins, curves_on_grid, survival_curves
from .model import MultimodalModel
from .train import fit_fusion, predict_fusion

if TYPE_CHECKING:
    from ..ledger import FitLedger

__all__ = ["fit_fusion_ensemble", "predict_ensemble", "fit_survival_ensemble", "predict_survival_ensemble"]

#: Training settings of :func:`fit_fusion` that suit ~100 labelled patients (notebooks 04 and 05).
SMALL_COHORT_TRAINING: dict[str, Any] = {"patience": 30, "learning_rate": 3e-3, "weight_decay": 1e-2, "batch_size": 32}


def fit_fusion_ensemble(
    blocks: Mapping[str, pd.DataFrame],
    labels: pd.Series,
    fit_ids: Sequence[Any],
    stop_ids: Sequence[Any],
    *,
    members: int = 5,
    seed: int = 0,
    model_options: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    epochs: int = 300,
    device: str = "cpu",
    ledger: FitLedger | None = None,
    step: str = "fused ensemble",
) -> list[MultimodalModel]:
    """Train ``members`` binary fusion models (concatenation) from seeds ``seed + 1000 * k``.

    Parameters
    ----------
    blocks : mapping of str to DataFrame
        The modality blocks, indexed by patient id (a patient absent from a block is masked).
    labels : Series
        0/1 label per patient id; NaN for a patient without a label (left out of training).
        Every id of ``fit_ids`` and ``stop_ids`` must be in its index.
    fit_ids, stop_ids : sequence
        Training patients and the patients that early-stop each member (unlabelled ones are dropped).
    members : int, default 5
    seed : int, default 0
    model_options : mapping, optional
        Passed to :class:`MultimodalModel` (e.g. ``embed_dim``, ``hidden``, ``dropout``,
        ``modality_dropout``); ``fusion="concat"`` and ``n_outputs=1`` are fixed.
    training : mapping, optional
        Passed to :func:`fit_fusion`; default :data:`SMALL_COHORT_TRAINING`.
    epochs : int, default 300
        At most; early stopping ends most trainings sooner.
    device : str, default "cpu"
    ledger : FitLedger, optional
        Records every member's training and early-stopping patients under ``step``.
    step : str, default "fused ensemble"

    Returns
    -------
    list of MultimodalModel
    """
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    fit, stop = labelled_ids(list(fit_ids), labels), labelled_ids(list(stop_ids), labels)
    if set(fit) & set(stop):
        raise ValueError(f"{len(set(fit) & set(stop))} patient(s) both train and early-stop the ensemble")
    train = MultimodalDataset(dict(blocks), fit, labels.loc[fit].to_numpy(dtype=float))
    validation = MultimodalDataset(dict(blocks), stop, labels.loc[stop].to_numpy(dtype=float))
    return _train_members(train, validation, "binary", 1, members, seed, model_options, training, epochs, device, ledger, step)


def _train_members(
    train: MultimodalDataset,
    validation: MultimodalDataset,
    task: str,
    n_outputs: int,
    members: int,
    seed: int,
    model_options: Mapping[str, Any] | None,
    training: Mapping[str, Any] | None,
    epochs: int,
    device: str,
    ledger: FitLedger | None,
    step: str,
) -> list[MultimodalModel]:
    """``members`` concatenation models for ``task``, each trained from seed ``seed + 1000 * k``."""
    settings = {**SMALL_COHORT_TRAINING, **dict(training or {})}
    fitted = []
    for member in range(members):
        model = MultimodalModel(train.block_features, fusion="concat", n_outputs=n_outputs, **dict(model_options or {}))
        fit_fusion(model, train, validation, task=task, epochs=epochs, device=device, seed=seed + 1000 * member, progress=False,
                   ledger=ledger, step=step, **settings)  # fmt: skip
        fitted.append(model)
    return fitted


def predict_ensemble(members: Sequence[MultimodalModel], blocks: Mapping[str, pd.DataFrame], ids: Sequence[Any], *, device: str = "cpu") -> pd.Series:
    """The members' mean predicted probability for each patient of ``ids``.

    Parameters
    ----------
    members : sequence of MultimodalModel
        Binary models, e.g. from :func:`fit_fusion_ensemble`.
    blocks : mapping of str to DataFrame
        The blocks the members were trained on (the same columns).
    ids : sequence
        Patients to score; each needs at least one block.
    device : str, default "cpu"

    Returns
    -------
    Series
        Indexed by ``ids``.
    """
    ids = list(ids)
    dataset = MultimodalDataset(dict(blocks), ids, np.zeros(len(ids)))
    return pd.Series(np.mean([predict_fusion(m, dataset, probabilities=True, device=device)[:, 0] for m in members], axis=0), index=ids)


def fit_survival_ensemble(
    blocks: Mapping[str, pd.DataFrame],
    outcomes: pd.DataFrame,
    fit_ids: Sequence[Any],
    stop_ids: Sequence[Any],
    bins: TimeBins,
    *,
    members: int = 5,
    seed: int = 0,
    model_options: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    epochs: int = 300,
    device: str = "cpu",
    ledger: FitLedger | None = None,
    step: str = "survival ensemble",
) -> list[MultimodalModel]:
    """Train ``members`` discrete-time survival fusion models: every patient counts, the censored ones included.

    The survival counterpart of :func:`fit_fusion_ensemble`: the same encoders, concatenation and
    seeds, a head with one hazard logit per bin of ``bins`` (``task="discrete_survival"``).

    Parameters
    ----------
    blocks : mapping of str to DataFrame
    outcomes : DataFrame
        ``time`` and ``event`` columns, indexed by patient id.
    fit_ids, stop_ids : sequence
        Training patients and the patients that early-stop each member.
    bins : TimeBins
        From :func:`~mmsurv.fusion.discrete_time.fit_time_bins` on the training patients.
    members, seed, model_options, training, epochs, device, ledger, step
        As :func:`fit_fusion_ensemble`.

    Returns
    -------
    list of MultimodalModel
    """
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    fit, stop = list(fit_ids), list(stop_ids)
    if set(fit) & set(stop):
        raise ValueError(f"{len(set(fit) & set(stop))} patient(s) both train and early-stop the ensemble")

    def dataset(ids: list[Any]) -> MultimodalDataset:
        return MultimodalDataset(dict(blocks), ids, bins.targets(outcomes.loc[ids, "time"].to_numpy(), outcomes.loc[ids, "event"].to_numpy()))

    return _train_members(
        dataset(fit), dataset(stop), "discrete_survival", bins.n_bins, members, seed, model_options, training, epochs, device, ledger, step
    )


def predict_survival_ensemble(
    members: Sequence[MultimodalModel],
    blocks: Mapping[str, pd.DataFrame],
    ids: Sequence[Any],
    bins: TimeBins,
    grid: np.ndarray,
    *,
    device: str = "cpu",
) -> np.ndarray:
    """The members' mean predicted survival curve for each patient of ``ids``, on ``grid``.

    Returns
    -------
    ndarray, shape (len(ids), len(grid))
        Each member's curves read with constant hazard inside each bin
        (:func:`~mmsurv.fusion.discrete_time.curves_on_grid`), then averaged.
    """
    ids = list(ids)
    dataset = MultimodalDataset(dict(blocks), ids, np.zeros((len(ids), 2)))
    return np.mean([curves_on_grid(survival_curves(predict_fusion(m, dataset, device=device)), bins, grid) for m in members], axis=0)
