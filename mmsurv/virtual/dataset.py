"""Write a virtual cohort to disk in the real formats, once, and find it again.

``virtual_cohort_files("brca", seed=0, size="smoke")`` returns a :class:`VirtualDataset`
whose folder looks like a real download:

=============  =====================================================================
cohort         files
=============  =====================================================================
``brca``       GDC: diagnostic slides (SVS), STAR counts, clinical TSV, sample sheet
``lung_tcga``  GDC: LUAD + LUSC slides, STAR counts (with normal tissue samples),
               SeSAMe betas, masked MAFs, clinical TSV, sample sheet
``cesc``       GDC: slides, masked MAFs, clinical TSV, sample sheet
``lung_ct``    TCIA-style: CT DICOM series + RTSTRUCT (``GTV-1``) for a radiotherapy
               collection (four centres) and a smaller, earlier-stage surgery
               collection on noisier scanners, RIDER-style same-day rescans, a second
               reader's contours, NSCLC-Radiomics-style clinical CSVs
``cesc_mri``   a hospital study: pelvic MRI (T2-like, diffusion-like, tumour masks;
               NIfTI), report text, ``clinical.csv`` with recurrence (notebook 05)
=============  =====================================================================

plus ``truth.tsv``: the planted latent traits and oracle risk of every patient, which the
notebooks use only to show the best achievable result.

The folder is keyed by cohort, seed and size, written under a temporary name and renamed
when complete, so an interrupted run never leaves a half-written cohort that looks done. A
cached cohort is reused only if it was written by the same generator code: ``cohort.json``
records :func:`generator_fingerprint` (a hash of the sources that write cohorts), and a cohort
written by other code is written again, with a warning - editing the generator without
remembering to bump a version number can no longer hide behind a warm ``data/`` folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from ..environment import PROJECT_ROOT
from ..io.gdc import write_sample_sheet
from .ct import dicom_uid, reader_mask, render_ct, tumour_shape, write_ct_series, write_rtstruct
from .geometry import ScanGeometry
from .mri_study import mri_study_patients, write_mri_patient, write_study_clinical
from .omics import gene_panel, simulate_expression, simulate_methylation, simulate_mutations, write_maf, write_methylation_betas, write_star_counts
from .simulate import simulate_cohort
from .slide_writer import write_virtual_slide
from .tables import file_uuid, write_gdc_clinical, write_nsclc_clinical
from .tissue import tissue_recipe

__all__ = [
    "COHORTS",
    "SIZES",
    "CohortSize",
    "VirtualDataset",
    "virtual_cohort_files",
    "cohort_being_written",
    "default_data_dir",
    "GENERATOR_VERSION",
    "generator_fingerprint",
    "CESC_PROGNOSTIC_GENES",
    "CESC_HISTOLOGY",
]

#: Bump when a cohort's files change for a reason outside the generator's own sources (e.g. a
#: dependency writes them differently); changes to the sources are caught by the fingerprint.
GENERATOR_VERSION = 6
_PACKAGE = Path(__file__).resolve().parents[1]
#: The sources whose code decides what a virtual cohort's files hold (besides ``virtual/`` itself).
_GENERATOR_SOURCES = ("endpoints.py", "io/gdc.py")
COHORTS = ("brca", "lung_tcga", "cesc", "lung_ct", "cesc_mri")


@dataclass(frozen=True)
class CohortSize:
    """How big each modality is written."""

    n_patients: int
    slide_mm: float
    slide_mpp: float
    ct: ScanGeometry
    mri: ScanGeometry
    n_rescans: int
    n_ct_patients: int
    n_background_genes: int
    n_probes: int


SIZES: dict[str, CohortSize] = {
    "smoke": CohortSize(
        48,
        slide_mm=1.2,
        slide_mpp=1.0,
        ct=ScanGeometry(96, 3.5, 36, 4.0),
        mri=ScanGeometry(64, 3.0, 16, 5.0),
        n_rescans=12,
        n_ct_patients=600,
        n_background_genes=200,
        n_probes=300,
    ),
    "full": CohortSize(
        300,
        slide_mm=2.0,
        slide_mpp=0.5,
        ct=ScanGeometry(160, 2.0, 64, 2.5),
        mri=ScanGeometry(112, 1.75, 20, 5.0),
        n_rescans=32,
        n_ct_patients=900,
        n_background_genes=1000,
        n_probes=2000,
    ),
}


@dataclass
class VirtualDataset:
    """A virtual cohort on disk.

    Attributes
    ----------
    name : str
    root : Path
    truth : DataFrame
        One row per patient: ids, centre, latent traits, clinical variables, outcomes and
        ``true_risk`` (the oracle log-hazard).
    info : dict
        What ``cohort.json`` records: seed, size, generator version, file counts, seconds.
    """

    name: str
    root: Path
    truth: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def gdc(self) -> Path:
        """GDC-style download folder: ``<file_id>/<file_name>`` and ``clinical.tsv``, as ``mmsurv fetch`` lays them out."""
        return self.root / "gdc"

    @property
    def sample_sheet(self) -> Path:
        """The GDC sample sheet (file -> case and sample), beside the ``gdc/`` folder as ``mmsurv fetch`` writes it."""
        return self.root / "gdc_sample_sheet.tsv"

    @property
    def tcia(self) -> Path:
        """TCIA-style collections (``<collection>/<PatientID>/<study>/<series>/*.dcm``)."""
        return self.root / "tcia"

    @property
    def mri(self) -> Path:
        return self.root / "mri"

    @property
    def reports(self) -> Path:
        return self.root / "reports"


def default_data_dir() -> Path:
    """``$MMSURV_DATA`` if set, else ``data/`` in the project."""
    return Path(os.environ.get("MMSURV_DATA", PROJECT_ROOT / "data"))


def generator_fingerprint() -> str:
    """A short hash of the code that writes virtual cohorts: every ``mmsurv/virtual`` module
    (the latent-biology simulator included), the endpoint labels and the GDC sample-sheet writer.

    Any edit to them - even one that leaves :data:`GENERATOR_VERSION` alone - changes the
    fingerprint, and cached cohorts written by the old code are regenerated.
    """
    digest = hashlib.sha256(str(GENERATOR_VERSION).encode())
    sources = sorted((_PACKAGE / "virtual").glob("*.py")) + [_PACKAGE / name for name in _GENERATOR_SOURCES]
    for path in sources:
        digest.update(path.relative_to(_PACKAGE).as_posix().encode())
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
    return digest.hexdigest()[:16]


def virtual_cohort_files(
    name: str,
    *,
    seed: int = 0,
    size: str = "smoke",
    data_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> VirtualDataset:
    """The files of a virtual cohort, written on first use and read from the cache afterwards.

    Parameters
    ----------
    name : {"brca", "lung_tcga", "cesc", "lung_ct", "cesc_mri"}
    seed : int, default 0
    size : {"smoke", "full"}
    data_dir : path-like, optional
        Default :func:`default_data_dir`; the cohort lives in ``virtual/<name>-seed<seed>-<size>``.
    workers : int, optional
        Processes for slides and scans; default ``min(2, cpu count)``.
    progress : bool, default True

    Returns
    -------
    VirtualDataset
    """
    if name not in COHORTS:
        raise ValueError(f"unknown virtual cohort {name!r}; choose from {COHORTS}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    root = _cohort_root(name, seed, size, data_dir)
    root.parent.mkdir(parents=True, exist_ok=True)
    # one writer per cohort: another process (a second notebook, a pytest-xdist worker) asking for
    # the same cohort meanwhile waits here, then reads what the first one wrote
    with FileLock(_lock_path(root)):
        return _cohort_files(name, root, seed, size, workers, progress)


def cohort_being_written(name: str, *, seed: int = 0, size: str = "smoke", data_dir: str | os.PathLike | None = None) -> bool:
    """Whether another process holds the cohort's lock now, i.e. is writing it (or reading it back).

    A call of :func:`virtual_cohort_files` for that cohort would wait for it; the runner says so
    instead of sitting silent.
    """
    lock_path = _lock_path(_cohort_root(name, seed, size, data_dir))
    if not lock_path.parent.is_dir():
        return False
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _cohort_root(name: str, seed: int, size: str, data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir or default_data_dir()) / "virtual" / f"{name}-seed{seed}-{size}"


def _lock_path(root: Path) -> Path:
    return root.with_name(f".{root.name}.lock")


def _cohort_files(name: str, root: Path, seed: int, size: str, workers: int | None, progress: bool) -> VirtualDataset:
    """:func:`virtual_cohort_files` once it holds the cohort's lock."""
    marker = root / "cohort.json"
    fingerprint = generator_fingerprint()
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info.get("generator_fingerprint") == fingerprint:
            return VirtualDataset(name, root, pd.read_csv(root / "truth.tsv", sep="\t"), info)
        warnings.warn(
            f"{root}: written by other generator code (fingerprint {info.get('generator_fingerprint')}, now {fingerprint}); writing the cohort again",
            stacklevel=3,
        )
    # under the lock no other process writes this cohort: a partial folder here was left by a writer
    # killed outright (SIGKILL, power loss), which had no chance to remove it
    for stale in root.parent.glob(f".{root.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    partial = root.with_name(f".{root.name}.partial-{os.getpid()}")
    started = time.perf_counter()
    writer = _WRITERS[name]
    try:
        partial.mkdir(parents=True)
        truth = writer(partial, _cohort_seed(name, seed), SIZES[size], _Pool(workers, progress, name))
        truth.to_csv(partial / "truth.tsv", sep="\t", index=False)
        info = {
            "cohort": name,
            "seed": seed,
            "size": size,
            "generator_version": GENERATOR_VERSION,
            "generator_fingerprint": fingerprint,
            "n_patients": int(len(truth)),
            "n_files": sum(1 for p in partial.rglob("*") if p.is_file()),
            "seconds": round(time.perf_counter() - started, 1),
        }
        (partial / "cohort.json").write_text(json.dumps(info, indent=2))
        if root.exists():
            shutil.rmtree(root)
        os.replace(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    # read the table back, so a fresh cohort and a cached one are the same object, to the last bit
    return VirtualDataset(name, root, pd.read_csv(root / "truth.tsv", sep="\t"), info)


def _cohort_seed(name: str, seed: int) -> int:
    return 1000 * seed + COHORTS.index(name)


class _Pool:
    """Runs per-patient writers in a few processes, with a progress bar."""

    def __init__(self, workers: int | None, progress: bool, label: str) -> None:
        self.workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self.progress = progress
        self.label = label

    def run(self, function: Callable[..., Any], jobs: Iterable[tuple], what: str) -> list[Any]:
        from tqdm.auto import tqdm

        jobs = list(jobs)
        bar = tqdm(total=len(jobs), desc=f"{self.label}: {what}", leave=False, disable=not self.progress)
        try:
            if self.workers <= 1 or len(jobs) < 4:
                results = []
                for job in jobs:
                    results.append(function(*job))
                    bar.update()
                return results
            pool = ProcessPoolExecutor(self.workers)
            try:
                futures = [pool.submit(function, *job) for job in jobs]
                results = []
                for future in futures:
                    results.append(future.result())
                    bar.update()
            except BaseException:
                # Ctrl-C (or a failed job): drop the jobs not started yet, so the caller can remove
                # its partial folder at once; a plain ``with`` block would first run every queued job
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
            return results
        finally:
            bar.close()


# ---------------------------------------------------------------- per-patient jobs (run in worker processes)


def _slide_job(path: str, proliferation: float, immune: float, size: CohortSize, seed: int, extra: dict[str, float]) -> None:
    recipe = tissue_recipe(proliferation, immune, width_um=size.slide_mm * 1000, height_um=size.slide_mm * 1000, seed=seed, **extra)
    write_virtual_slide(path, recipe, size.slide_mpp, metadata={"Filename": Path(path).stem})


def _ct_job(
    folder: str, patient: dict[str, Any], geometry: ScanGeometry, rescan: bool, second_reader_folder: str | None, noise_hu: float
) -> dict[str, float]:
    tumour = tumour_shape(patient["proliferation"], patient["invasion"], seed=patient["tumour_seed"], geometry=geometry)
    ids = {"patient_id": patient["patient_id"], "sex": patient["sex"]}
    scans = [("scan-1", (0.0, 0.0, 0.0))]
    if rescan:
        shift = np.random.default_rng(patient["tumour_seed"] + 3).normal(0, 2.0, size=3)
        scans.append(("scan-2", tuple(float(s) for s in shift)))
    for number, (study, offset) in enumerate(scans):
        uid = f"{patient['patient_id']}/{study}"
        info = dict(ids, study_uid=dicom_uid(uid, "study"), frame_uid=dicom_uid(uid, "frame"), study_date=f"2008010{number + 1}")
        hu, true_mask = render_ct(tumour, geometry, scan_seed=patient["tumour_seed"] * 7 + number, offset_mm=offset, noise_hu=noise_hu)
        series_uid = dicom_uid(uid, "ct")
        base = Path(folder) / patient["patient_id"] / f"{info['study_date']}-{study}"
        sop_uids = write_ct_series(base / "1.000000-CT", hu, geometry, info, series_uid=series_uid)
        write_rtstruct(base / "3.000000-RTSTRUCT" / "1-1.dcm", {"GTV-1": true_mask}, geometry, info, ct_series_uid=series_uid, ct_sop_uids=sop_uids)
        if second_reader_folder is not None and number == 0:
            second = reader_mask(tumour, geometry, reader_seed=patient["tumour_seed"] + 11)
            target = Path(second_reader_folder) / patient["patient_id"] / f"{info['study_date']}-{study}" / "3.000000-RTSTRUCT-reader2"
            write_rtstruct(target / "1-1.dcm", {"GTV-1": second}, geometry, info, ct_series_uid=series_uid, ct_sop_uids=sop_uids, label="reader2")
    voxel_ml = np.prod(geometry.spacing) / 1000
    return {
        "tumour_radius_mm": tumour.radius_mm,
        "tumour_volume_ml": float(true_mask.sum() * voxel_ml),
        "heterogeneity_hu": tumour.heterogeneity_hu,
        "lobulation": tumour.lobe_strength,
    }


# ---------------------------------------------------------------- cohort writers


def _gdc_cohort(seed: int, n_patients: int, *, sex_female: float) -> pd.DataFrame:
    cohort = simulate_cohort(n_patients, seed=seed, n_centres=4)
    truth = cohort.patients.copy()
    rng = np.random.default_rng(seed + 5)
    truth["gender"] = np.where(rng.random(len(truth)) < sex_female, "female", "male")
    return truth


#: Each centre stains a little differently (a nuisance a model must not rely on).
_CENTRE_STAIN_SHIFT = {"C1": -0.8, "C2": -0.25, "C3": 0.3, "C4": 0.9}


def _write_slides(
    root: Path,
    truth: pd.DataFrame,
    size: CohortSize,
    seed: int,
    pool: _Pool,
    project: str,
    extra: Callable[[pd.Series], dict[str, float]] | None = None,
    *,
    sample: str = "01Z",
    slide: str = "01Z-00-DX1",
) -> list[dict[str, str]]:
    """Write one slide per patient: a diagnostic (FFPE, ``DX``) tumour slide unless ``slide`` says otherwise."""
    kind = "Solid Tissue Normal" if sample.startswith("11") else "Primary Tumor"
    rows, jobs = [], []
    for index, patient in truth.iterrows():
        slide_barcode = f"{patient['patient_id']}-{slide}"
        file_id = file_uuid(project, slide_barcode)
        name = f"{slide_barcode}.{file_id.upper()}.svs"
        options = {"stain_shift": _CENTRE_STAIN_SHIFT.get(patient["centre"], 0.0), **(extra(patient) if extra else {})}
        jobs.append(
            (str(root / file_id / name), float(patient["proliferation"]), float(patient["immune"]), size, seed * 10_000 + int(index), options)
        )
        rows.append(
            _sheet_row(file_id, name, "Biospecimen", "Slide Image", project, patient["patient_id"], f"{patient['patient_id']}-{sample}", kind)
        )
    pool.run(_slide_job, jobs, "slides")
    return rows


def _sheet_row(file_id: str, name: str, category: str, data_type: str, project: str, patient: str, sample: str, kind: str) -> dict[str, str]:
    return {
        "file_id": file_id,
        "file_name": name,
        "data_category": category,
        "data_type": data_type,
        "project_id": project,
        "case_id": patient,
        "sample_id": sample,
        "sample_type": kind,
    }


def _write_expression(root: Path, samples: pd.DataFrame, panel: Any, seed: int, project_of: Callable[[str], str]) -> list[dict[str, str]]:
    tpm = simulate_expression(panel, samples.drop(columns=["patient", "sample_type"]), seed=seed)
    rows = []
    for number, (sample, info) in enumerate(samples.iterrows()):
        file_id = file_uuid("expression", sample)
        name = f"{file_id}.rna_seq.augmented_star_gene_counts.tsv"
        write_star_counts(root / file_id / name, panel, tpm[sample], seed=seed + number)
        rows.append(
            _sheet_row(
                file_id,
                name,
                "Transcriptome Profiling",
                "Gene Expression Quantification",
                project_of(info["patient"]),
                info["patient"],
                sample,
                info["sample_type"],
            )
        )
    return rows


def _tumour_samples(truth: pd.DataFrame) -> pd.DataFrame:
    """One primary-tumour sample (``<patient>-01A``) per patient, with the latent traits as factors."""
    frame = truth.set_index(truth["patient_id"] + "-01A")[["proliferation", "immune", "invasion"]].copy()
    frame["patient"], frame["sample_type"] = truth["patient_id"].to_numpy(), "Primary Tumor"
    return frame


def _write_brca(root: Path, seed: int, size: CohortSize, pool: _Pool) -> pd.DataFrame:
    # at least 120 patients: slide-level regression needs more slides than the smoke size of the others
    truth = _gdc_cohort(seed, max(size.n_patients, 120), sex_female=1.0)
    gdc = root / "gdc"
    rows = _write_slides(gdc, truth, size, seed, pool, "VIRT-BRCA")
    panel = gene_panel(size.n_background_genes, seed=seed)
    rows += _write_expression(gdc, _tumour_samples(truth), panel, seed, lambda _: "VIRT-BRCA")
    write_gdc_clinical(gdc / "clinical.tsv", truth, project="VIRT-BRCA", stage_field="ajcc_pathologic_stage", seed=seed)
    write_sample_sheet(root / "gdc_sample_sheet.tsv", pd.DataFrame(rows))
    return truth


_LUNG_MODULES = {
    "squamous": ("KRT5", "KRT6A", "TP63", "SOX2", "DSG3", "DSC3"),
    "adeno": ("NKX2-1", "NAPSA", "SFTPB", "MUC1", "CEACAM6"),
    "normal_lung": ("AGER", "CLDN18", "SFTPC", "CAV1", "FABP4"),
}


def _lung_patients(seed: int, n_patients: int) -> pd.DataFrame:
    """Lung patients: subtype, weakly informative sex and smoking, normal samples and missing modalities."""
    truth = _gdc_cohort(seed, n_patients, sex_female=0.45)
    rng = np.random.default_rng(seed + 9)
    truth["subtype"] = np.where(rng.random(len(truth)) < 0.5, "LUAD", "LUSC")
    squamous = truth["subtype"].eq("LUSC").to_numpy()
    # squamous carcinoma is commoner in men and heavy smokers: weak clinical signal, as in TCGA
    truth["gender"] = np.where(rng.random(len(truth)) < np.where(squamous, 0.32, 0.55), "female", "male")
    never = rng.random(len(truth)) < np.where(squamous, 0.04, 0.2)
    pack_years = rng.gamma(4.0, np.where(squamous, 13.0, 10.0))
    truth["smoking_status"] = np.where(
        never, "Lifelong Non-Smoker", np.where(rng.random(len(truth)) < 0.5, "Current Smoker", "Current Reformed Smoker")
    )
    truth["pack_years"] = np.where(never, np.nan, pack_years.round(1))
    truth["has_normal_sample"] = rng.random(len(truth)) < 0.3
    # as in TCGA, not every sample was profiled on every platform or has a scanned slide
    truth["has_tumour_slide"] = rng.random(len(truth)) < 0.92
    truth["has_normal_slide"] = truth["has_normal_sample"] & (rng.random(len(truth)) < 0.8)
    truth["has_tumour_methylation"] = rng.random(len(truth)) < 0.85
    truth["has_normal_methylation"] = truth["has_normal_sample"] & (rng.random(len(truth)) < 0.85)
    return truth


def _lung_morphology(rng: np.random.Generator, kind: str) -> dict[str, float]:
    """Per-slide subtype morphology, weak and overlapping: the class shows in some tiles, not all."""
    if kind == "normal":
        return {"tumour_fraction": rng.uniform(0.05, 0.3), "alveoli": rng.uniform(0.15, 0.5), "glands": rng.uniform(0.0, 0.05)}
    glandular = kind == "LUAD"
    return {
        "tumour_fraction": rng.uniform(0.3, 0.6) if glandular else rng.uniform(0.4, 0.7),
        "glands": rng.uniform(0.05, 0.3) if glandular else rng.uniform(0.0, 0.08),
        "keratin": rng.uniform(0.0, 0.04) if glandular else rng.uniform(0.04, 0.22),
        "alveoli": rng.uniform(0.0, 0.2),
    }


def _write_lung_tcga(root: Path, seed: int, size: CohortSize, pool: _Pool) -> pd.DataFrame:
    # at least 160 patients: a three-class task with a held-out centre needs more than the smoke size of the others
    truth = _lung_patients(seed, max(size.n_patients, 160))
    project_of = dict(zip(truth["patient_id"], "VIRT-" + truth["subtype"])).__getitem__
    gdc = root / "gdc"
    squamous = truth["subtype"].eq("LUSC")
    rng = np.random.default_rng(seed + 13)
    rows = []
    for subtype in ("LUAD", "LUSC"):
        part = truth[(truth["subtype"] == subtype) & truth["has_tumour_slide"]]
        shapes = {p: _lung_morphology(rng, subtype) for p in part["patient_id"]}
        rows += _write_slides(gdc, part, size, seed + (subtype == "LUSC"), pool, f"VIRT-{subtype}", extra=lambda p, s=shapes: s[p["patient_id"]])
    normal_slides = truth[truth["has_normal_slide"]].assign(proliferation=-1.5, immune=0.0)
    shapes = {p: _lung_morphology(rng, "normal") for p in normal_slides["patient_id"]}
    rows += [
        dict(row, project_id=project_of(row["case_id"]))
        for row in _write_slides(
            gdc, normal_slides, size, seed + 2, pool, "VIRT-LUNG", extra=lambda p: shapes[p["patient_id"]], sample="11A", slide="11A-01-TS1"
        )
    ]
    samples = _tumour_samples(truth)
    samples["squamous"] = np.where(squamous, 1.5, -1.0)
    samples["adeno"] = np.where(squamous, -1.0, 1.5)
    samples["normal_lung"] = -1.5
    normals = truth[truth["has_normal_sample"]]
    normal = pd.DataFrame(
        {
            "proliferation": -1.5,
            "immune": 0.0,
            "invasion": -1.0,
            "squamous": -1.5,
            "adeno": -0.5,
            "normal_lung": 1.5,
            "patient": normals["patient_id"].to_numpy(),
            "sample_type": "Solid Tissue Normal",
        },
        index=normals["patient_id"] + "-11A",
    )
    samples = pd.concat([samples, normal])
    panel = gene_panel(size.n_background_genes, seed=seed, extra_factors=_LUNG_MODULES)
    rows += _write_expression(gdc, samples, panel, seed, project_of)
    factors = samples.drop(columns=["patient", "sample_type"])
    betas = simulate_methylation(factors, n_probes=size.n_probes, seed=seed, extra_modules=tuple(_LUNG_MODULES))
    profiled = set(truth.loc[truth["has_tumour_methylation"], "patient_id"] + "-01A") | set(
        truth.loc[truth["has_normal_methylation"], "patient_id"] + "-11A"
    )
    for sample, info in samples[samples.index.isin(profiled)].iterrows():
        file_id = file_uuid("methylation", sample)
        name = f"{file_id}.methylation_array.sesame.level3betas.txt"
        write_methylation_betas(gdc / file_id / name, betas[sample])
        rows.append(
            _sheet_row(
                file_id, name, "DNA Methylation", "Methylation Beta Value", project_of(info["patient"]), info["patient"], sample, info["sample_type"]
            )
        )
    rows += _write_mutations(gdc, truth, seed, project_of)
    clinical = truth.copy()
    for subtype in ("LUAD", "LUSC"):
        write_gdc_clinical(
            gdc / f"clinical-{subtype}.tsv",
            clinical[clinical["subtype"] == subtype],
            project=f"VIRT-{subtype}",
            stage_field="ajcc_pathologic_stage",
            seed=seed,
        )
    _concatenate_tables([gdc / "clinical-LUAD.tsv", gdc / "clinical-LUSC.tsv"], gdc / "clinical.tsv")
    write_sample_sheet(root / "gdc_sample_sheet.tsv", pd.DataFrame(rows))
    return truth


def _concatenate_tables(parts: list[Path], target: Path) -> None:
    pd.concat([pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in parts]).to_csv(target, sep="\t", index=False)
    for part in parts:
        part.unlink()


def _write_mutations(gdc: Path, truth: pd.DataFrame, seed: int, project_of: Callable[[str], str], **options: Any) -> list[dict[str, str]]:
    """One masked MAF per patient of ``truth``; ``options`` go to :func:`simulate_mutations`."""
    factors = truth.set_index("patient_id")[["proliferation", "immune", "invasion"]]
    variants = simulate_mutations(factors, seed=seed + 3, **options)
    rows = []
    for number, patient in enumerate(truth["patient_id"]):
        tumour, normal = f"{patient}-01A-11D-A{number % 1000:03d}-09", f"{patient}-10A-01D-A{number % 1000:03d}-09"
        file_id = file_uuid("maf", tumour)
        name = f"{file_id}.wxs.aliquot_ensemble_masked.maf.gz"
        write_maf(gdc / file_id / name, variants[variants["sample"] == patient], tumour, normal, seed=seed + number)
        rows.append(
            _sheet_row(
                file_id,
                name,
                "Simple Nucleotide Variation",
                "Masked Somatic Mutation",
                project_of(patient),
                patient,
                f"{patient}-01A, {patient}-10A",
                "Primary Tumor, Blood Derived Normal",
            )
        )
    return rows


#: Prognostic mutations planted in the ``cesc`` cohort: gene -> (log-hazard ratio of death when
#: mutated, share of patients mutated). The first three are the genes the abstract of Shen et al.
#: (2026) names among its LASSO-Cox selection; here their effect is planted, not measured.
CESC_PROGNOSTIC_GENES: dict[str, tuple[float, float]] = {
    "RGR": (1.2, 0.22),
    "DBN1": (1.1, 0.2),
    "CALCR": (1.0, 0.22),
    "FAT1": (1.0, 0.25),
    "NOTCH1": (-1.1, 0.25),
    "ERBB3": (-1.0, 0.22),
}
#: Histologies of the ``cesc`` cohort (GDC ``primary_diagnosis``): share and log-hazard ratio.
CESC_HISTOLOGY: dict[str, tuple[float, float]] = {
    "Squamous cell carcinoma, NOS": (0.75, 0.0),
    "Adenocarcinoma, NOS": (0.2, 0.3),
    "Adenosquamous carcinoma": (0.05, 0.3),
}
#: Patients of the ``cesc`` cohort: the paper's 119 TCGA + 53 external patients, from three
#: centres (one plays the external hospital, and notebook 05 uses all three).
_CESC_PATIENTS = 172
#: Non-silent mutations in genes without any planted role, among which selection must search.
_CESC_NEUTRAL_GENES = 300


def _cesc_patients(seed: int) -> pd.DataFrame:
    """Cervical cancer patients: planted prognostic mutations and histology, heavy early censoring."""
    rng = np.random.default_rng(seed + 21)
    n = _CESC_PATIENTS
    mutated = pd.DataFrame({g: rng.random(n) < share for g, (_, share) in CESC_PROGNOSTIC_GENES.items()}).astype(int)
    names, (shares, log_hr) = list(CESC_HISTOLOGY), zip(*CESC_HISTOLOGY.values())
    histology = rng.choice(len(names), size=n, p=np.asarray(shares))
    extra = mutated.to_numpy() @ np.array([b for b, _ in CESC_PROGNOSTIC_GENES.values()]) + np.asarray(log_hr)[histology]
    # TCGA-CESC follows many patients for only a year or two: a tenth lost to follow-up per year
    cohort = simulate_cohort(n, seed=seed, n_centres=3, median_survival_years=8.0, loss_to_follow_up_per_year=0.1, extra_log_hazard=extra)
    truth = cohort.patients.copy()
    truth["gender"] = "female"
    truth["histology"] = np.asarray(names)[histology]
    truth["has_slide"] = rng.random(n) < 0.94
    truth["has_maf"] = rng.random(n) < 0.92
    for gene in CESC_PROGNOSTIC_GENES:
        truth[f"mutated_{gene}"] = mutated[gene].to_numpy()
    return truth


def _write_cesc(root: Path, seed: int, size: CohortSize, pool: _Pool) -> pd.DataFrame:
    truth = _cesc_patients(seed)
    gdc = root / "gdc"
    rows = _write_slides(gdc, truth[truth["has_slide"]], size, seed, pool, "VIRT-CESC")
    sequenced = truth[truth["has_maf"]]
    planted = sequenced.set_index("patient_id")[[f"mutated_{g}" for g in CESC_PROGNOSTIC_GENES]].set_axis(list(CESC_PROGNOSTIC_GENES), axis=1)
    rows += _write_mutations(gdc, sequenced, seed, lambda _: "VIRT-CESC", planted=planted, n_neutral_genes=_CESC_NEUTRAL_GENES)
    write_gdc_clinical(gdc / "clinical.tsv", truth, project="VIRT-CESC", stage_field="figo_stage", seed=seed)
    write_sample_sheet(root / "gdc_sample_sheet.tsv", pd.DataFrame(rows))
    return truth


#: Probability that a patient of each clinical stage was operated on (the rest had radiotherapy):
#: the surgery cohort is smaller and earlier-stage, a shifted distribution to transfer to.
_SURGERY_BY_STAGE = {1: 0.6, 2: 0.45, 3: 0.1, 4: 0.0}
#: Scanner noise (HU) by collection: the surgery centres' scanners are noisier.
_CT_NOISE_HU = {"NSCLC-Radiomics": 18.0, "NSCLC-Surgery": 28.0, "RIDER-Lung-CT": 18.0}
_CT_ID_PREFIX = {"NSCLC-Radiomics": "VLUNG1", "NSCLC-Surgery": "VSURG1", "RIDER-Lung-CT": "VRIDER"}
#: The radiotherapy centre whose patients a second reader contoured (notebook 02 tests on it).
INTEROBSERVER_CENTRE = "C4"


def _write_cesc_mri(root: Path, seed: int, size: CohortSize, pool: _Pool) -> pd.DataFrame:
    truth = mri_study_patients(seed)
    write_study_clinical(root / "clinical.csv", truth)
    columns = ["patient_id", "centre", "proliferation", "invasion", "tumour_seed", "has_dwi", "has_report"]
    jobs = [(str(root / "mri"), str(root / "reports" / f"{p['patient_id']}.txt"), p, size.mri) for p in truth[columns].to_dict("records")]
    pool.run(write_mri_patient, jobs, "MRI and reports")
    return truth


def _write_lung_ct(root: Path, seed: int, size: CohortSize, pool: _Pool) -> pd.DataFrame:
    # lung cancer: median survival about 2 years, so about half of the patients die within 2 years
    cohort = simulate_cohort(size.n_ct_patients + size.n_rescans, seed=seed, n_centres=4, median_survival_years=2.0)
    truth = cohort.patients.copy()
    rng = np.random.default_rng(seed + 13)
    truth["sex"] = np.where(rng.random(len(truth)) < 0.35, "F", "M")
    operated = rng.random(len(truth)) < truth["stage"].map(_SURGERY_BY_STAGE).to_numpy()
    truth["collection"] = np.where(operated, "NSCLC-Surgery", "NSCLC-Radiomics")
    truth.loc[truth.index[-size.n_rescans :], "collection"] = "RIDER-Lung-CT"  # same-day test-retest scans, no outcomes used
    truth["treatment"] = truth["collection"].map({"NSCLC-Radiomics": "radiotherapy", "NSCLC-Surgery": "surgery", "RIDER-Lung-CT": "unknown"})
    truth["patient_id"] = [f"{_CT_ID_PREFIX[c]}-{k + 1:03d}" for c, k in zip(truth["collection"], truth.groupby("collection").cumcount())]
    truth["tumour_seed"] = seed * 10_000 + np.arange(len(truth))
    truth["rescanned"] = truth["collection"].eq("RIDER-Lung-CT")
    truth["second_reader"] = truth["collection"].eq("NSCLC-Radiomics") & truth["centre"].eq(INTEROBSERVER_CENTRE)
    jobs = []
    for _, patient in truth.iterrows():
        record = {k: patient[k] for k in ("patient_id", "proliferation", "invasion", "tumour_seed", "sex")}
        second = str(root / "tcia" / "NSCLC-Radiomics-Interobserver1") if patient["second_reader"] else None
        folder = root / "tcia" / patient["collection"]
        jobs.append((str(folder), record, size.ct, bool(patient["rescanned"]), second, _CT_NOISE_HU[patient["collection"]]))
    measured = pd.DataFrame(pool.run(_ct_job, jobs, "CT scans"), index=truth.index)
    truth = pd.concat([truth, measured], axis=1)
    diameter = 2 * truth["tumour_radius_mm"]
    truth["t_stage"] = 1 + np.searchsorted([30.0, 50.0, 70.0], diameter)
    truth["n_stage"] = np.clip(np.round(truth["invasion"] + rng.normal(0, 0.6, len(truth)) + 0.5), 0, 3).astype(int)
    truth["m_stage"] = (rng.random(len(truth)) < 0.03).astype(int)
    truth["overall_stage"] = [_tnm_stage(t, n, m) for t, n, m in zip(truth["t_stage"], truth["n_stage"], truth["m_stage"])]
    truth["histology"] = rng.choice(["adenocarcinoma", "squamous cell carcinoma", "large cell", "nos"], size=len(truth), p=[0.35, 0.4, 0.2, 0.05])
    truth["gender"] = np.where(truth["sex"] == "F", "female", "male")
    for collection in ("NSCLC-Radiomics", "NSCLC-Surgery"):  # RIDER publishes no clinical table
        part = truth[truth["collection"] == collection]
        write_nsclc_clinical(root / "tcia" / f"{collection}.clinical.csv", part, extra_columns=("centre",))
    return truth


def _tnm_stage(t: int, n: int, m: int) -> str:
    """A simplified AJCC 7th-edition grouping, with NSCLC-Radiomics' spelling (I, II, IIIa, IIIb)."""
    if m or n == 3 or t == 4 and n >= 2:
        return "IIIb"
    if n == 2 or t == 4 or (t == 3 and n == 1):
        return "IIIa"
    if n == 1 or t == 3:
        return "II"
    return "I"


_WRITERS: dict[str, Callable[[Path, int, CohortSize, _Pool], pd.DataFrame]] = {
    "brca": _write_brca,
    "lung_tcga": _write_lung_tcga,
    "cesc": _write_cesc,
    "lung_ct": _write_lung_ct,
    "cesc_mri": _write_cesc_mri,
}
