"""The virtual cervical MRI study: three hospitals' pelvic MRI, radiology reports and clinical table.

The study notebook 05 reproduces (445 operable patients, three centres) is not a TCGA project:
it is a hospital cohort with preoperative MRI, the radiologist's report and a clinical table
with recurrence follow-up. This module draws its patients and writes them in the layout the
kit's reader (:func:`mmsurv.io.mri_study.read_mri_study`) expects of a real one::

    clinical.csv                      patient_id, centre, age, figo_stage, histology,
                                      recurrence (0/1), rfs_months
    mri/<patient_id>/t2w.nii.gz       T2-weighted-like volume
    mri/<patient_id>/dwi.nii.gz       diffusion-weighted-like volume (absent for some)
    mri/<patient_id>/tumour_mask.nii.gz
    reports/<patient_id>.txt          the MRI report (absent for some)

Planted recurrence (:data:`PLANTED_RECURRENCE`), each in the modality that shows it:

* **images**: tumour size and diffusion restriction;
* **reports**: parametrial invasion and the number of suspicious nodes (said in words, often
  negated) - the report also repeats the size and grades the restriction coarsely;
* **clinical table**: histology and age; FIGO stage is a clinical examination's *noisy* read of
  size and parametrial invasion, as clinical staging is.

Each centre scans with its own gain per sequence, noise and in-plane resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from .geometry import ScanGeometry
from .mri import pelvic_tumour, render_mri
from .reports import mri_report
from .simulate import _weibull_times, simulate_cohort

__all__ = ["PLANTED_RECURRENCE", "MRI_STUDY_PATIENTS", "mri_study_patients", "centre_geometry", "write_mri_patient", "write_study_clinical"]

#: Patients of the virtual study: the paper's 445, from three centres.
MRI_STUDY_PATIENTS = 445
#: Planted log-hazard ratios of recurrence, per unit of each quantity.
PLANTED_RECURRENCE: dict[str, float] = {
    "tumour_size_per_cm": 0.45,
    "diffusion_restriction_per_0.35": 0.65,
    "parametrial_invasion": 0.9,
    "suspicious_nodes_per_node": 0.35,
    "non_squamous_histology": 0.5,
    "age_per_decade": 0.1,
}
_HISTOLOGY = {"squamous cell carcinoma": 0.75, "adenocarcinoma": 0.2, "adenosquamous carcinoma": 0.05}
#: Per-centre scanner: (T2 gain, diffusion gain, noise factor, in-plane resolution factor).
_SCANNERS = {"C1": (0.8, 1.3, 1.0, 1.0), "C2": (1.1, 0.8, 1.3, 1.0), "C3": (1.4, 1.1, 0.8, 0.75)}
_MISSING_REPORT, _MISSING_DWI = 0.1, 0.12


def _figo(size_cm: np.ndarray, parametrial: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """FIGO 2009 stage as a clinical examination sees it: palpated size (+-1 cm) and parametria (a quarter misread)."""
    palpated = size_cm + rng.normal(0, 1.0, len(size_cm))
    felt_parametria = np.where(rng.random(len(size_cm)) < 0.25, ~parametrial, parametrial)
    return np.where(felt_parametria, "IIB", np.where(palpated > 4.0, "IB2", "IB1"))


def mri_study_patients(seed: int, n_patients: int = MRI_STUDY_PATIENTS) -> pd.DataFrame:
    """Draw the study's patients: ids, centre, tumour, clinical variables, recurrence and the oracle.

    Parameters
    ----------
    seed : int
    n_patients : int, default :data:`MRI_STUDY_PATIENTS`

    Returns
    -------
    DataFrame
        One row per patient; ``true_risk`` is the planted log-hazard of recurrence and
        ``tumour_seed`` the seed its scan and report are drawn with.
    """
    cohort = simulate_cohort(n_patients, seed=seed, n_centres=3)
    rng = np.random.default_rng(seed + 55)
    patients = cohort.patients[["patient_id", "centre", "proliferation", "invasion", "age"]].copy()
    patients["age"] = np.clip(patients["age"] - 8, 22, 85)  # operable cervical cancer is a younger disease
    patients["tumour_seed"] = seed * 10_000 + np.arange(n_patients)
    tumours = [pelvic_tumour(p, i, seed=s) for p, i, s in zip(patients["proliferation"], patients["invasion"], patients["tumour_seed"])]
    patients["tumour_diameter_mm"] = [t.max_diameter_mm for t in tumours]
    patients["diffusion_restriction"] = [t.restriction for t in tumours]
    patients["parametrial_invasion"] = [int(t.parametrial_invasion) for t in tumours]
    patients["nodes"] = [t.nodes for t in tumours]
    names = list(_HISTOLOGY)
    patients["histology"] = np.asarray(names)[rng.choice(len(names), size=n_patients, p=list(_HISTOLOGY.values()))]
    size_cm = patients["tumour_diameter_mm"].to_numpy() / 10
    patients["figo_stage"] = _figo(size_cm, patients["parametrial_invasion"].to_numpy(bool), rng)
    b = PLANTED_RECURRENCE
    risk = (
        b["tumour_size_per_cm"] * (size_cm - 4.0)
        + b["diffusion_restriction_per_0.35"] * (patients["diffusion_restriction"].to_numpy() - 1.0) / 0.35
        + b["parametrial_invasion"] * patients["parametrial_invasion"].to_numpy()
        + b["suspicious_nodes_per_node"] * np.minimum(patients["nodes"].to_numpy(), 4)
        + b["non_squamous_histology"] * (patients["histology"] != names[0]).to_numpy()
        + b["age_per_decade"] * (patients["age"].to_numpy() - 50) / 10
    )
    patients["true_risk"] = risk
    # recurrence: Weibull, median 12 years at risk 0; accrual over 4 years, study closed at 7, a twentieth lost per year
    median_days, shape = 12.0 * 365.25, 1.1
    recurrence = _weibull_times(rng, risk, shape, np.log(2) / median_days**shape)
    entry = rng.uniform(0, 4.0, n_patients)
    censor = np.minimum((7.0 - entry) * 365.25, rng.exponential(1 / 0.05, n_patients) * 365.25)
    patients["rfs_days"] = np.maximum(np.minimum(recurrence, censor).round(), 1.0)
    patients["recurrence"] = (recurrence <= censor).astype(int)
    patients["has_report"] = rng.random(n_patients) >= _MISSING_REPORT
    patients["has_dwi"] = rng.random(n_patients) >= _MISSING_DWI
    return patients


def centre_geometry(geometry: ScanGeometry, centre: str) -> ScanGeometry:
    """The scan grid of ``centre``: the same field of view, at the centre's in-plane resolution."""
    factor = _SCANNERS[centre][3]
    return ScanGeometry(int(round(geometry.rows / factor)), geometry.pixel_mm * factor, geometry.slices, geometry.slice_mm)


def write_mri_patient(folder: str, report_path: str, patient: dict[str, Any], geometry: ScanGeometry) -> None:
    """Write one patient's NIfTI volumes (and report, when the patient has one)."""
    from ..io.nifti import write_nifti
    from ..io.volumes import Volume

    t2_gain, dwi_gain, noise, _ = _SCANNERS[patient["centre"]]
    grid = centre_geometry(geometry, patient["centre"])
    tumour = pelvic_tumour(patient["proliferation"], patient["invasion"], seed=patient["tumour_seed"])
    t2, dwi, mask = render_mri(tumour, grid, scan_seed=patient["tumour_seed"] + 1, scanner_gain=1.0, noise=noise)
    base = Path(folder) / patient["patient_id"]
    meta = {"patient_id": patient["patient_id"]}
    volumes = {"t2w": np.round(t2 * t2_gain).astype(np.int16), "tumour_mask": mask}  # scanners store 16-bit integers
    if patient["has_dwi"]:
        volumes["dwi"] = np.round(dwi * dwi_gain).astype(np.int16)
    for name, array in volumes.items():
        write_nifti(base / f"{name}.nii.gz", Volume(array, grid.spacing, origin=grid.origin, metadata=meta))
    if patient["has_report"]:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(Path(report_path)) as partial:
            partial.write_text(mri_report(tumour, seed=patient["tumour_seed"] + 2))


def write_study_clinical(path: Path, patients: pd.DataFrame) -> Path:
    """Write ``clinical.csv`` as a hospital exports it: one row per patient, follow-up in months."""
    table = pd.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "centre": patients["centre"],
            "age": patients["age"].astype(int),
            "figo_stage": patients["figo_stage"],
            "histology": patients["histology"],
            "recurrence": patients["recurrence"],
            "rfs_months": (patients["rfs_days"] / (365.25 / 12)).round(1),
        }
    )
    with atomic_path(path) as partial:
        table.to_csv(partial, index=False)
    return path
