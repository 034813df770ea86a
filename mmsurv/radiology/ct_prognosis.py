"""2-year survival from CT tumour cubes: cohort table, splits, CNN training, transfer, clinical baseline.

The pieces of notebook 02 (Hosny et al. 2018) that are more than a line or two:

* :func:`ct_patient_table` joins the contoured scans with the clinical table and derives the
  2-year label (patients censored before 2 years are left out of it, not counted as alive);
* :func:`centre_split` reproduces the paper's roles: train on some centres, tune on one, test
  on another - or, for a single-centre collection, a stratified random patient split;
* :func:`fit_cube_classifier` / :func:`death_probability` train and apply a
  :class:`mmsurv.models.CT3DCNN` through the kit's shared training loop;
* :func:`transfer_to` copies a trained CNN, freezes its conv blocks and retrains the dense layers;
* :func:`fit_clinical_forest` is the random-forest clinical baseline.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..endpoints import DAYS_PER_YEAR, event_within
from ..models.cnn3d import CT3DCNN
from ..splits import patient_split
from ..training import TrainingHistory, predict, train_model
from .cube_data import CubeDataset

if TYPE_CHECKING:
    from ..ledger import FitLedger

__all__ = ["ct_patient_table", "centre_split", "fit_cube_classifier", "death_probability", "deep_features", "transfer_to", "fit_clinical_forest"]


def ct_patient_table(scans: pd.DataFrame, clinical: pd.DataFrame, *, collection: str, horizon_years: float = 2.0) -> pd.DataFrame:
    """One row per patient of a collection: its first scan, clinical variables, outcome and label.

    Parameters
    ----------
    scans : DataFrame
        :func:`mmsurv.radiology.ct_cubes.index_ct_scans` (all collections; row positions index the cubes).
    clinical : DataFrame
        :func:`mmsurv.io.tcia.read_nsclc_radiomics_clinical` (``patient``, ``os_time``, ``os_event``...).
    collection : str
        Whose contours to use, e.g. ``"NSCLC-Radiomics"``.
    horizon_years : float, default 2

    Returns
    -------
    DataFrame
        The clinical columns, ``scan_row`` (the scan's position in ``scans``), and ``died_2y``:
        1 if dead by the horizon, 0 if followed beyond it alive, NaN if censored before it.
        Patients with a scan but no clinical row, or the reverse, are dropped and listed in
        ``attrs["unmatched"]``.
    """
    positions = scans.reset_index(drop=True)
    first = positions[(positions["collection"] == collection) & (positions["scan"] == 1)]
    if first.empty:
        raise ValueError(f"no contoured scans of collection {collection!r}; found {sorted(scans['collection'].unique())}")
    rows = pd.Series(first.index, index=first["patient_id"], name="scan_row")
    table = clinical.rename(columns={"patient": "patient_id"}).merge(rows, left_on="patient_id", right_index=True, how="inner")
    table = table.reset_index(drop=True)
    table["died_2y"] = event_within(table["os_time"].to_numpy(), table["os_event"].to_numpy(), horizon_years * DAYS_PER_YEAR)
    table.attrs["unmatched"] = sorted(set(clinical["patient"]) ^ set(first["patient_id"]))
    return table


def centre_split(patients: pd.DataFrame, *, tune_centre: str, test_centre: str, seed: int = 0) -> pd.Series:
    """``train`` / ``tune`` / ``test`` per patient, by centre when the table has several.

    With a ``centre`` column holding both named centres: ``test_centre`` is the test set,
    ``tune_centre`` the tuning (early-stopping) set and every other centre trains - the
    roles of HarvardRT (train), Radboud (tune) and Maastro (test) in the paper. Without one
    (a single-centre collection such as NSCLC-Radiomics): a random patient-level split,
    stratified on the label, 50% / 20% / 30%.
    """
    if "centre" in patients and {tune_centre, test_centre} <= set(patients["centre"]):
        split = pd.Series("train", index=patients.index, dtype=object)
        split[patients["centre"] == tune_centre] = "tune"
        split[patients["centre"] == test_centre] = "test"
        return split
    labels = patients.assign(_stratum=patients["died_2y"].fillna(-1))
    split = patient_split(labels, test_fraction=0.3, validation_fraction=0.2, stratify="_stratum", seed=seed)
    return split.replace({"validation": "tune"})


def _loader(cubes: np.ndarray, labels: np.ndarray, side: int, *, augment: bool, batch_size: int, seed: int) -> DataLoader:
    dataset = CubeDataset(cubes, np.asarray(labels).astype(int), side, augment=augment, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    # a training batch of one cube cannot pass the dense layers' batch norm: drop that lone
    # cube (a different one each epoch, as batches are shuffled) rather than crash
    lone_last = augment and len(dataset) > batch_size and len(dataset) % batch_size == 1
    return DataLoader(dataset, batch_size=batch_size, shuffle=augment, generator=generator, drop_last=lone_last)


def fit_cube_classifier(
    model: CT3DCNN,
    train: tuple[np.ndarray, np.ndarray],
    tune: tuple[np.ndarray, np.ndarray],
    *,
    side: int,
    epochs: int = 40,
    learning_rate: float = 2e-3,
    patience: int = 10,
    batch_size: int = 16,
    device: str = "cpu",
    seed: int = 0,
    patient_ids: tuple[Sequence, Sequence] | None = None,
    progress: bool = True,
    description: str = "3D CNN",
    ledger: FitLedger | None = None,
    step: str | None = None,
) -> TrainingHistory:
    """Train a CT CNN on (cubes, 0/1 labels) with augmentation, early stopping on the tuning set.

    Parameters
    ----------
    model : CT3DCNN
    train, tune : (cubes, labels)
        Cubes as stored (with margins), labels 0/1 (no NaN). Labels given as Series indexed by
        patient id (both sets) name the patients when ``patient_ids`` is not given.
    side : int
        Voxels per side the model sees (``CubeSettings.cube_voxels``).
    epochs, learning_rate, patience, batch_size : training settings
    device : str
    seed : int
        Seeds the batch order, the augmentation and dropout (the initial weights are the
        model's: build it with ``ct_cnn(..., seed=...)``). The same arguments train the same model.
    patient_ids : (train ids, tune ids), optional
        Whose cubes ``train`` and ``tune`` hold, recorded in ``history.samples`` (``"train"``,
        ``"validation"``) so that the split actually trained on can be written down and checked.
    progress : bool
    description : str
    ledger : FitLedger, optional
        Records those patients as ``"<step>: fit"`` and ``"<step>: early stopping"`` (see
        :mod:`mmsurv.ledger`); needs ``patient_ids`` or labels indexed by patient id.
    step : str, optional
        The ledger's name for this training; ``description`` when not given.

    Returns
    -------
    TrainingHistory
        The model keeps the weights of the epoch with the lowest tuning loss.
    """
    for name, (_, labels) in {"train": train, "tune": tune}.items():
        labels = np.asarray(labels, dtype=float)
        if np.isnan(labels).any() or len(np.unique(labels)) < 2:
            raise ValueError(f"{name} labels must be 0/1 without NaN and contain both classes")
    if patient_ids is None and isinstance(train[1], pd.Series) and isinstance(tune[1], pd.Series):
        patient_ids = (list(train[1].index), list(tune[1].index))
    if ledger is not None and patient_ids is None:
        raise ValueError("fit_cube_classifier(ledger=...) needs patient_ids, or labels as Series indexed by patient id")
    history = train_model(
        model,
        _loader(*train, side, augment=True, batch_size=batch_size, seed=seed),
        _loader(*tune, side, augment=False, batch_size=64, seed=seed),
        loss_fn=nn.CrossEntropyLoss(),
        epochs=epochs,
        learning_rate=learning_rate,
        patience=patience,
        device=device,
        seed=seed,
        sample_ids=dict(zip(("train", "validation"), patient_ids)) if patient_ids is not None else None,
        progress=progress,
        description=description,
    )
    if ledger is not None:
        ledger.record_history(step or description, history.samples)
    return history


def _outputs_by_cube(function, cubes: np.ndarray, side: int, device: str, batch_size: int) -> np.ndarray:
    """``function`` (a model or one of its methods) applied to the central crop of every cube, in cube order."""
    loader = _loader(cubes, np.zeros(len(cubes)), side, augment=False, batch_size=batch_size, seed=0)
    outputs, order = predict(function, loader, device=device, progress=False)
    return outputs[np.argsort(order)]


def death_probability(model: CT3DCNN, cubes: np.ndarray, *, side: int, device: str = "cpu", batch_size: int = 64) -> np.ndarray:
    """Predicted probability of death by the horizon (softmax of class 1), from the central crop of each cube."""
    if len(cubes) == 0:
        return np.empty(0)
    logits = _outputs_by_cube(model, cubes, side, device, batch_size)
    return torch.softmax(torch.from_numpy(logits), dim=1)[:, 1].numpy()


def deep_features(model: CT3DCNN, cubes: np.ndarray, *, side: int, device: str = "cpu", batch_size: int = 64) -> np.ndarray:
    """The deep feature (last dense layer) of each cube, shape (n, model.n_features)."""
    return _outputs_by_cube(model.features, cubes, side, device, batch_size)


def transfer_to(model: CT3DCNN) -> CT3DCNN:
    """A copy of a trained CNN ready for transfer learning: conv blocks frozen, dense layers trainable."""
    adapted = copy.deepcopy(model)
    adapted.freeze_convolutions()
    return adapted


def fit_clinical_forest(
    frame: pd.DataFrame,
    labels: np.ndarray,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    n_trees: int = 500,
    seed: int = 0,
    ledger: FitLedger | None = None,
    step: str = "clinical random forest",
):
    """A random forest on clinical variables (one-hot categories, numbers as they are; missing values imputed).

    ``categorical`` columns should hold strings (e.g. ``overall_stage``, ``histology``). ``ledger``
    records the patients of ``frame`` (its ``patient_id`` column, else its index) under ``step``:
    the imputers, the encoder and the forest are all fitted on them.

    Returns a fitted scikit-learn pipeline: ``.predict_proba(frame)[:, 1]`` is the probability of death.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    columns = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), list(numeric)),
            ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), list(categorical)),
        ]
    )
    forest = RandomForestClassifier(n_estimators=n_trees, min_samples_leaf=5, random_state=seed, n_jobs=1)
    pipeline = make_pipeline(columns, forest)
    if ledger is not None:
        ledger.record(step, frame["patient_id"] if "patient_id" in frame else frame.index)
    return pipeline.fit(frame, np.asarray(labels).astype(int))
