"""TCIA clinical tables: NSCLC-Radiomics ("Lung1").

The collection's clinical CSV (``NSCLC-Radiomics-Lung1.clinical-version3-Oct-2019.csv``) has
one row per patient: ``PatientID`` (``LUNG1-001``...), ``age``, ``clinical.T.Stage``,
``Clinical.N.Stage``, ``Clinical.M.Stage``, ``Overall.Stage``, ``Histology``, ``gender``,
``Survival.time`` (days from the start of radiotherapy) and ``deadstatus.event`` (1 = dead).

Reference: Aerts H.J.W.L. et al., "Decoding tumour phenotype by noninvasive imaging using a
quantitative radiomics approach", Nat Commun 5:4006 (2014).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .errors import DataFormatError

__all__ = ["read_nsclc_radiomics_clinical", "NSCLC_RADIOMICS_COLUMNS"]

#: Raw column -> the kit's name.
NSCLC_RADIOMICS_COLUMNS: dict[str, str] = {
    "PatientID": "patient",
    "age": "age",
    "clinical.T.Stage": "t_stage",
    "Clinical.N.Stage": "n_stage",
    "Clinical.M.Stage": "m_stage",
    "Overall.Stage": "overall_stage",
    "Histology": "histology",
    "gender": "gender",
    "Survival.time": "os_time",
    "deadstatus.event": "os_event",
}


def read_nsclc_radiomics_clinical(path: str | os.PathLike) -> pd.DataFrame:
    """Read the NSCLC-Radiomics clinical CSV with the kit's column names.

    Returns
    -------
    DataFrame
        ``patient``, ``age``, ``t_stage``, ``n_stage``, ``m_stage``, ``overall_stage``,
        ``histology``, ``gender``, ``os_time`` (days), ``os_event`` (1 = death), plus any
        other columns unchanged.

    Raises
    ------
    DataFormatError
        Missing, empty or unreadable file, missing columns, no patient rows, survival times
        that are negative or not numbers, or event codes other than 0 / 1.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "no such clinical table")
    try:
        raw = pd.read_csv(path, na_values=["NA", ""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        raise DataFormatError(path, f"is not a readable CSV ({type(error).__name__}: {error})") from error
    missing = [c for c in NSCLC_RADIOMICS_COLUMNS if c not in raw.columns]
    if missing:
        raise DataFormatError(path, f"is not the NSCLC-Radiomics clinical table: missing column(s) {missing}")
    if raw.empty:
        raise DataFormatError(path, "has a header but no patient rows")
    table = raw.rename(columns=NSCLC_RADIOMICS_COLUMNS)
    time = pd.to_numeric(table["os_time"], errors="coerce")
    if time.isna().any():
        raise DataFormatError(path, f"Survival.time is missing or not a number for {table.loc[time.isna(), 'patient'].tolist()[:5]}")
    if (time < 0).any():
        raise DataFormatError(path, f"negative Survival.time for {table.loc[time < 0, 'patient'].tolist()[:5]}")
    event = pd.to_numeric(table["os_event"], errors="coerce")
    if not event.isin([0, 1]).all():
        raise DataFormatError(path, f"deadstatus.event must be 0 or 1; found {sorted(set(table['os_event'].astype(str)))}")
    table["os_time"], table["os_event"] = time.astype(float), event.astype(int)
    return table
