"""Real outcome tables that ship with the kit.

``data_manifests/tcga_cdr_cesc_brca_luad_lusc.tsv`` holds the TCGA Pan-Cancer Clinical Data
Resource (Liu et al., Cell 2018) for TCGA-CESC, -BRCA, -LUAD and -LUSC: one row per
patient, curated endpoints OS / DSS / PFI / DFI with times in days.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .environment import PROJECT_ROOT

__all__ = ["TCGA_CDR_PATH", "load_tcga_outcomes", "stage_group"]

TCGA_CDR_PATH = PROJECT_ROOT / "data_manifests" / "tcga_cdr_cesc_brca_luad_lusc.tsv"
_ENDPOINTS = ("OS", "DSS", "PFI", "DFI")
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4}


def stage_group(stage: str | float) -> float:
    """Map an AJCC or FIGO stage string (``"Stage IIIB"``, ``"Stage IB1"``) to 1-4; NaN if unknown."""
    if not isinstance(stage, str):
        return np.nan
    match = re.match(r"Stage (IV|I{1,3})(?![IV])", stage.strip())
    return float(_ROMAN[match.group(1)]) if match else np.nan


def load_tcga_outcomes(
    projects: Sequence[str] | None = None,
    *,
    endpoint: str = "OS",
    path: str | Path = TCGA_CDR_PATH,
) -> pd.DataFrame:
    """Load TCGA-CDR patients with one survival endpoint, cleaned for analysis.

    Parameters
    ----------
    projects : sequence of {"CESC", "BRCA", "LUAD", "LUSC"}, optional
        Projects to keep (default all four).
    endpoint : {"OS", "DSS", "PFI", "DFI"}, default "OS"
        Overall survival, disease-specific survival, progression-free interval or
        disease-free interval, as curated by TCGA-CDR.
    path : path, optional
        The TSV file.

    Returns
    -------
    DataFrame
        ``patient_id``, ``project``, ``age``, ``gender``, ``stage`` (1-4, from the AJCC
        pathologic stage, or the clinical (FIGO) stage where that is missing, as in CESC),
        ``time`` (days), ``event`` (1 = event), plus the original columns. TCGA's bracketed
        markers (``[Not Available]``, ...) become NaN. Patients without the endpoint or
        flagged ``Redacted`` are dropped; how many is in ``.attrs["dropped"]``.

    Raises
    ------
    FileNotFoundError, ValueError
        If the file is missing, or a requested project or endpoint is unknown.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: TCGA-CDR outcome table not found")
    if endpoint not in _ENDPOINTS:
        raise ValueError(f"endpoint must be one of {_ENDPOINTS}, got {endpoint!r}")
    raw = pd.read_csv(path, sep="\t", na_values=["", "[Not Available]", "[Unknown]", "[Not Applicable]", "[Discrepancy]", "[Not Evaluated]"])
    required = {"bcr_patient_barcode", "acronym", endpoint, f"{endpoint}.time"}
    if required - set(raw.columns):
        raise ValueError(f"{path}: missing columns {sorted(required - set(raw.columns))}")
    if projects is not None:
        unknown = set(projects) - set(raw["acronym"])
        if unknown:
            raise ValueError(f"unknown project(s) {sorted(unknown)}; available: {sorted(raw['acronym'].unique())}")
        raw = raw[raw["acronym"].isin(projects)]
    frame = raw.assign(
        patient_id=raw["bcr_patient_barcode"],
        project=raw["acronym"],
        age=pd.to_numeric(raw["age_at_initial_pathologic_diagnosis"], errors="coerce"),
        stage=raw["ajcc_pathologic_tumor_stage"].map(stage_group).fillna(raw["clinical_stage"].map(stage_group)),
        time=pd.to_numeric(raw[f"{endpoint}.time"], errors="coerce"),
        event=pd.to_numeric(raw[endpoint], errors="coerce"),
    )
    redacted = frame["Redaction"].eq("Redacted")
    no_endpoint = frame["time"].isna() | frame["event"].isna() | (frame["time"] < 0)
    keep = ~redacted & ~no_endpoint
    cleaned = frame[keep].astype({"event": int}).reset_index(drop=True)
    cleaned.attrs["dropped"] = {"redacted": int(redacted.sum()), f"no_{endpoint}": int((no_endpoint & ~redacted).sum())}
    return cleaned
