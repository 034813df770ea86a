"""Virtual clinical tables in the layouts of the GDC and of TCIA's NSCLC-Radiomics.

The quirks are deliberate, because real tables have them: the GDC clinical TSV has one row
per treatment (so a case spans several rows whose follow-up days differ), ``'--`` for
missing values, and ``days_to_death`` only for the dead; the NSCLC-Radiomics CSV has its own
column names and stage codes.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path

__all__ = ["write_gdc_clinical", "write_nsclc_clinical", "file_uuid", "AJCC_STAGES", "FIGO_STAGES"]

AJCC_STAGES = {1: "Stage I", 2: "Stage II", 3: "Stage III", 4: "Stage IV"}
FIGO_STAGES = {1: "Stage IB", 2: "Stage II", 3: "Stage III", 4: "Stage IVA"}
_MISSING = "'--"


def file_uuid(*parts: object) -> str:
    """A reproducible GDC-style file UUID from the given parts."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mmsurv/" + "/".join(str(p) for p in parts)))


def write_gdc_clinical(path: str | os.PathLike, patients: pd.DataFrame, *, project: str, stage_field: str, seed: int) -> Path:
    """Write a GDC cart-style ``clinical.tsv`` (several rows per case, prefixed columns).

    ``patients`` needs ``patient_id``, ``age``, ``stage``, ``time``, ``event`` and
    ``gender`` (``grade`` and ``histology`` are written when present); ``stage_field`` is
    ``"ajcc_pathologic_stage"`` or ``"figo_stage"``. With
    ``smoking_status`` (and ``pack_years``) columns, the exposure fields are written too.
    """
    rng = np.random.default_rng(seed)
    stages = FIGO_STAGES if stage_field == "figo_stage" else AJCC_STAGES
    rows = []
    for _, p in patients.iterrows():
        dead = bool(p["event"])
        treatments = ["Radiation Therapy, NOS", "Pharmaceutical Therapy, NOS", "Surgery, NOS"][: int(rng.integers(1, 4))]
        for position, treatment in enumerate(treatments):
            # only one of the rows carries the final follow-up; the others an earlier visit or nothing
            if position == 0:
                follow_up = _MISSING if dead and rng.random() < 0.5 else str(int(p["time"] if not dead else p["time"] * rng.uniform(0.3, 1.0)))
            else:
                follow_up = _MISSING if rng.random() < 0.4 else str(int(p["time"] * rng.uniform(0.2, 0.95)))
            rows.append(
                {
                    "project.project_id": project,
                    "cases.case_id": file_uuid(project, p["patient_id"], "case"),
                    "cases.submitter_id": p["patient_id"],
                    "demographic.age_at_index": str(int(p["age"])),
                    "demographic.gender": p["gender"],
                    "demographic.vital_status": "Dead" if dead else "Alive",
                    "demographic.days_to_death": str(int(p["time"])) if dead else _MISSING,
                    "diagnoses.days_to_last_follow_up": follow_up,
                    f"diagnoses.{stage_field}": stages[int(p["stage"])],
                    "diagnoses.tumor_grade": f"G{int(p['grade'])}" if "grade" in p else _MISSING,
                    "diagnoses.primary_diagnosis": p["histology"] if "histology" in p else _MISSING,
                    "treatments.treatment_type": treatment,
                    **_exposures(p),
                }
            )
    with atomic_path(path) as partial:
        pd.DataFrame(rows).to_csv(partial, sep="\t", index=False)
    return Path(path)


def _exposures(patient: pd.Series) -> dict[str, str]:
    """GDC's smoking fields, for cohorts that record them (pack-years missing for never-smokers)."""
    if "smoking_status" not in patient:
        return {}
    pack_years = patient.get("pack_years", np.nan)
    return {
        "exposures.tobacco_smoking_status": patient["smoking_status"],
        "exposures.pack_years_smoked": _MISSING if pd.isna(pack_years) else f"{pack_years:.1f}",
    }


def write_nsclc_clinical(path: str | os.PathLike, patients: pd.DataFrame, *, extra_columns: tuple[str, ...] = ()) -> Path:
    """Write a clinical CSV with NSCLC-Radiomics' columns (``PatientID``, ``clinical.T.Stage`` ...).

    ``patients`` needs ``patient_id``, ``age``, ``gender``, ``t_stage``, ``n_stage``,
    ``m_stage``, ``overall_stage``, ``histology``, ``time``, ``event``; ``extra_columns`` are
    appended as they are (the virtual cohort adds ``centre``, which the real table lacks: Lung1
    is one centre).
    """
    table = pd.DataFrame(
        {
            "PatientID": patients["patient_id"],
            "age": patients["age"].round(4),
            "clinical.T.Stage": patients["t_stage"],
            "Clinical.N.Stage": patients["n_stage"],
            "Clinical.M.Stage": patients["m_stage"],
            "Overall.Stage": patients["overall_stage"],
            "Histology": patients["histology"],
            "gender": patients["gender"],
            "Survival.time": patients["time"].astype(int),
            "deadstatus.event": patients["event"].astype(int),
            **{column: patients[column] for column in extra_columns},
        }
    )
    with atomic_path(path) as partial:
        table.to_csv(partial, index=False, na_rep="NA")
    return Path(path)
