"""A hospital MRI study on disk: pelvic MRI per patient, report text and a clinical table.

Public MRI collections come without the radiology reports and recurrence follow-up a study
like notebook 05's needs, so the kit reads the layout such a study is usually exported in
(the virtual ``cesc_mri`` cohort writes the same)::

    <folder>/clinical.csv                 patient_id, centre, age, figo_stage, histology,
                                          recurrence (1 = recurred, 0 = not, empty = unknown),
                                          rfs_months (recurrence-free follow-up)
    <folder>/mri/<patient_id>/t2w.nii.gz  or a folder t2w/ of DICOM files
    <folder>/mri/<patient_id>/dwi.nii.gz  or dwi/ (optional: the diffusion sequence)
    <folder>/mri/<patient_id>/tumour_mask.nii.gz   (on the T2 grid)
    <folder>/reports/<patient_id>.txt     (optional)

A patient without a report, a diffusion sequence or any MRI stays in the study: the
modality is recorded as missing, never silently imputed.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .dicom import read_dicom_series
from .errors import DataFormatError, DataWarning
from .nifti import read_nifti
from .volumes import Volume

__all__ = ["MriStudy", "read_mri_study", "read_sequence", "CLINICAL_COLUMNS", "SEQUENCES"]

CLINICAL_COLUMNS = ("patient_id", "centre", "age", "figo_stage", "histology", "recurrence", "rfs_months")
#: The files of one patient's MRI, by role.
SEQUENCES = ("t2w", "dwi", "tumour_mask")
_DAYS_PER_MONTH = 365.25 / 12


@dataclass
class MriStudy:
    """What :func:`read_mri_study` found.

    Attributes
    ----------
    folder : Path
    clinical : DataFrame
        Indexed by ``patient_id``: ``centre``, ``age``, ``figo_stage``, ``histology``,
        ``recurrence`` (0 / 1), ``rfs_days``.
    files : DataFrame
        Indexed by ``patient_id``, one column per entry of :data:`SEQUENCES`: the path of the
        NIfTI file or DICOM folder, or None where it is absent.
    reports : Series
        Report text per patient, NaN where there is none.
    """

    folder: Path
    clinical: pd.DataFrame
    files: pd.DataFrame
    reports: pd.Series

    def availability(self) -> pd.DataFrame:
        """Which patients have which modality (booleans): ``mri`` (T2 and mask), ``dwi``, ``report``."""
        return pd.DataFrame(
            {
                "mri": self.files["t2w"].notna() & self.files["tumour_mask"].notna(),
                "dwi": self.files["dwi"].notna(),
                "report": self.reports.notna(),
            }
        )


def _read_clinical(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataFormatError(path, "no clinical.csv: the study folder needs one row per patient (see mmsurv.io.mri_study)")
    try:
        table = pd.read_csv(path, dtype={"patient_id": str, "centre": str})
    except Exception as error:
        raise DataFormatError(path, f"not a readable CSV ({type(error).__name__}: {error})") from error
    missing = [c for c in CLINICAL_COLUMNS if c not in table.columns]
    if missing:
        raise DataFormatError(path, f"missing column(s) {missing}; expected {list(CLINICAL_COLUMNS)}")
    if table["patient_id"].isna().any() or table["patient_id"].duplicated().any():
        raise DataFormatError(path, "patient_id must be present and unique on every row")
    recurrence = pd.to_numeric(table["recurrence"], errors="coerce")
    months = pd.to_numeric(table["rfs_months"], errors="coerce")
    bad = (recurrence.notna() & ~recurrence.isin([0, 1])) | (months < 0)
    if bad.any():
        raise DataFormatError(path, f"recurrence must be 0 or 1 and rfs_months >= 0; rows {list(table.index[bad][:5])} are not")
    unknown = recurrence.isna() | months.isna()
    if unknown.all():
        raise DataFormatError(path, "no patient has both a recurrence status and a follow-up time")
    if unknown.any():
        warnings.warn(f"{path}: {int(unknown.sum())} patient(s) with unknown recurrence status or follow-up left out", DataWarning, stacklevel=3)
    table = table.loc[~unknown].assign(recurrence=recurrence[~unknown].astype(int), rfs_days=months[~unknown] * _DAYS_PER_MONTH)
    table["age"] = pd.to_numeric(table["age"], errors="coerce")
    return table.drop(columns="rfs_months").set_index("patient_id")


def _sequence_path(folder: Path, name: str) -> str | None:
    for candidate in (folder / f"{name}.nii.gz", folder / f"{name}.nii", folder / name):
        if candidate.exists():
            return str(candidate)
    return None


def read_mri_study(folder: str | os.PathLike) -> MriStudy:
    """List a study folder's patients, files and reports (volumes are read later, one at a time).

    Parameters
    ----------
    folder : path-like
        The study folder (layout in the module docstring).

    Returns
    -------
    MriStudy

    Raises
    ------
    DataFormatError
        No such folder; a missing, unreadable or malformed ``clinical.csv``; a report that is
        not UTF-8 text.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, "no such study folder")
    clinical = _read_clinical(folder / "clinical.csv")
    files = pd.DataFrame({name: [_sequence_path(folder / "mri" / p, name) for p in clinical.index] for name in SEQUENCES}, index=clinical.index)
    reports = {}
    for patient in clinical.index:
        path = folder / "reports" / f"{patient}.txt"
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8").strip()
            except UnicodeDecodeError as error:
                raise DataFormatError(path, f"not UTF-8 text ({error})") from error
            reports[patient] = text or np.nan  # an empty file is no report
    return MriStudy(folder, clinical, files.astype(object).where(files.notna(), None), pd.Series(reports, dtype=object).reindex(clinical.index))


def read_sequence(path: str | os.PathLike) -> Volume:
    """Read one sequence or mask: a NIfTI file, or a folder holding one DICOM series."""
    path = Path(path)
    return read_dicom_series(path) if path.is_dir() else read_nifti(path)
