"""Patient-level splits: no patient (and so no slide or tile of theirs) in two splits.

Tiles of one patient look alike; if some sit in training and others in test, the test
score measures memory, not generalisation. Every split in the kit is therefore drawn over
patient ids, and an external centre can be held out whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["patient_split", "check_no_patient_overlap"]


def patient_split(
    patients: pd.DataFrame,
    *,
    test_fraction: float = 0.25,
    validation_fraction: float = 0.0,
    external_centres: Sequence[str] = (),
    stratify: str | None = "event",
    seed: int = 0,
    patient_col: str = "patient_id",
    centre_col: str = "centre",
) -> pd.Series:
    """Assign each patient to ``train``, ``validation``, ``test`` or ``external``.

    Parameters
    ----------
    patients : DataFrame
        One row per patient (duplicate ids raise).
    test_fraction, validation_fraction : float
        Fractions of the non-external patients.
    external_centres : sequence of str
        Centres held out whole as the external validation set.
    stratify : str or None, default "event"
        Column whose classes are kept in proportion across splits (None: plain random).
    seed : int
    patient_col, centre_col : str

    Returns
    -------
    Series
        Split name per patient, indexed like ``patients``.
    """
    if patients[patient_col].duplicated().any():
        dup = patients.loc[patients[patient_col].duplicated(), patient_col].iloc[0]
        raise ValueError(f"patient id {dup!r} appears more than once: split a table with one row per patient")
    if not 0 < test_fraction < 1 or not 0 <= validation_fraction < 1 or test_fraction + validation_fraction >= 1:
        raise ValueError("test_fraction and validation_fraction must be in [0, 1) and sum below 1")
    unknown = set(external_centres) - set(patients[centre_col]) if external_centres else set()
    if unknown:
        raise ValueError(f"external centre(s) {sorted(unknown)} not found in column {centre_col!r}")
    rng = np.random.default_rng(seed)
    split = pd.Series("train", index=patients.index, dtype=object)
    external = patients[centre_col].isin(external_centres) if external_centres else pd.Series(False, index=patients.index)
    split[external] = "external"
    internal = patients.index[~external]
    strata = patients.loc[internal, stratify].fillna(-1) if stratify else pd.Series(0, index=internal)
    for _, members in strata.groupby(strata):
        order = rng.permutation(members.index.to_numpy())
        n_test = int(round(test_fraction * len(order)))
        n_validation = int(round(validation_fraction * len(order)))
        split[order[:n_test]] = "test"
        split[order[n_test : n_test + n_validation]] = "validation"
    return split


def check_no_patient_overlap(split: pd.Series, patient_ids: pd.Series) -> None:
    """Raise ``ValueError`` if any patient id appears in more than one split.

    Works for any row level (patients, slides, tiles): pass the split and the patient id
    of every row.
    """
    per_patient = pd.DataFrame({"split": split.to_numpy(), "patient": patient_ids.to_numpy()}).groupby("patient")["split"].nunique()
    leaked = per_patient[per_patient > 1]
    if len(leaked):
        raise ValueError(f"{len(leaked)} patient(s) appear in more than one split, e.g. {leaked.index[0]!r}")
