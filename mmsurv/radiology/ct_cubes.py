"""Tumour cubes from CT: find each contoured scan, then cut a cube around the tumour.

The preprocessing of Hosny et al. (2018)'s released code, step by step:

1. read the CT series in Hounsfield units and rasterise the ``GTV-1`` contour of the RTSTRUCT;
2. resample both to isotropic voxels (1 mm in the paper): linear interpolation for the CT,
   nearest neighbour for the mask, so the mask stays binary;
3. find the tumour's centre of mass and cut a 50 x 50 x 50 mm cube around it;
4. scale intensities as ``(HU + 1024) / 4095``.

The cube is cut ``margin_mm`` larger on every side, so training can shift it by a few
millimetres (:mod:`mmsurv.radiology.cube_data`) and evaluation takes the centre.

Extraction reads a whole DICOM series per scan, so each cube is cached as ``.npz`` (written
atomically); a second run, or a run that was interrupted, reads what is already there.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..io.dicom import find_rtstruct, index_dicom_folder, read_dicom_series, rtstruct_mask
from ..io.errors import DataFormatError, DataWarning
from ..io.volumes import Volume, crop_cube, mask_centroid_mm, resample_to_spacing, scale_hu

__all__ = ["CubeSettings", "TumourCubes", "index_ct_scans", "tumour_cube", "extract_tumour_cubes", "max_diameter_mm"]


@dataclass(frozen=True)
class CubeSettings:
    """How cubes are cut.

    Attributes
    ----------
    spacing_mm : float
        Isotropic voxel size after resampling (1 mm in the paper).
    cube_mm : float
        Side of the cube the model sees (50 mm in the paper).
    margin_mm : float
        Extra context on every side, for random shifts during training.
    roi : str
        The contour to centre on.
    """

    spacing_mm: float = 1.0
    cube_mm: float = 50.0
    margin_mm: float = 5.0
    roi: str = "GTV-1"

    @property
    def cube_voxels(self) -> int:
        """Voxels per side of the cube the model sees."""
        return int(round(self.cube_mm / self.spacing_mm))

    @property
    def stored_voxels(self) -> int:
        """Voxels per side of the stored cube (the cube plus its margins)."""
        return self.cube_voxels + 2 * int(round(self.margin_mm / self.spacing_mm))


def index_ct_scans(root: str | os.PathLike) -> pd.DataFrame:
    """One row per contoured CT scan under a TCIA-style folder.

    Each RTSTRUCT is matched to the CT series its contours were drawn on (by series UID, as
    the RTSTRUCT records it), wherever that series lies under ``root``: a second reader's
    contours may sit in another collection than the scan.

    Parameters
    ----------
    root : path-like
        Holds ``<collection>/<PatientID>/<study>/<series>/*.dcm``, as ``mmsurv fetch`` and the
        virtual cohort write them.

    Returns
    -------
    DataFrame
        ``collection`` (of the RTSTRUCT), ``patient_id``, ``scan`` (1, 2, ... by study folder
        name within the patient: test and retest), ``ct_folder``, ``rtstruct``,
        ``ct_series_uid``.

    A CT series found in two folders (the same scan downloaded with two collections) is
    matched to each RTSTRUCT once: the copy in the RTSTRUCT's collection, else the first by
    folder name, with one warning naming the folders. An RTSTRUCT drawn on another image
    series that is under ``root`` (an MR or PET of the same study) is left out, with one
    warning that names its modality.

    Raises
    ------
    DataFormatError
        An RTSTRUCT that names no image series, or whose series is not under ``root``, or
        copies of one CT series with different numbers of files.
    """
    root = Path(root)
    series = index_dicom_folder(root, first_file_only=True)
    # files straight under root have no collection folder
    series["collection"] = [next(iter(Path(folder).relative_to(root).parts), "") for folder in series["folder"]]
    ct = _ct_copies(series[series["modality"] == "CT"])
    modality_of = dict(zip(series["series_uid"], series["modality"]))
    rows, not_on_ct = [], []
    for _, row in series[series["modality"] == "RTSTRUCT"].iterrows():
        path = find_rtstruct(row["folder"])
        referenced = row["referenced_series_uid"]
        copies = ct.get(referenced)
        if not referenced:
            raise DataFormatError(
                path, "names no image series (ReferencedFrameOfReferenceSequence > RTReferencedStudySequence > RTReferencedSeriesSequence)"
            )
        if copies is None and referenced in modality_of:  # drawn on an MR (or PET) beside the CT: not a CT scan's contours
            not_on_ct.append((path, modality_of[referenced], referenced))
            continue
        if copies is None:
            raise DataFormatError(path, f"its contours belong to image series {referenced}, which is not under {root}")
        same_collection = [copy for copy in copies if copy["collection"] == row["collection"]]
        scan = (same_collection or copies)[0]
        rows.append(
            {
                "collection": row["collection"],
                "patient_id": row["patient_id"],
                "ct_folder": str(scan["folder"]),
                "rtstruct": str(path),
                "ct_series_uid": row["referenced_series_uid"],
                "study": Path(scan["folder"]).parent.name,
            }
        )
    if not_on_ct:
        path, modality, uid = not_on_ct[0]
        warnings.warn(
            f"{len(not_on_ct)} RTSTRUCT file(s) under {root} were drawn on a series that is not a CT and are left out, e.g. "
            f"{path}: its contours belong to {modality or 'an image'} series {uid}",
            DataWarning,
            stacklevel=2,
        )
    uncontoured = set(ct) - {r["ct_series_uid"] for r in rows}
    if uncontoured:
        warnings.warn(f"{len(uncontoured)} CT series under {root} have no RTSTRUCT and are left out", stacklevel=2)
    table = pd.DataFrame(rows, columns=["collection", "patient_id", "ct_folder", "rtstruct", "ct_series_uid", "study"])
    table = table.sort_values(["collection", "patient_id", "study"], ignore_index=True)
    table["scan"] = table.groupby(["collection", "patient_id"]).cumcount() + 1
    return table.drop(columns="study")


def _ct_copies(ct: pd.DataFrame) -> dict[str, list[pd.Series]]:
    """CT series UID -> its folders (rows of :func:`index_dicom_folder`), sorted by folder.

    One series can be downloaded into two collections (NSCLC-Radiomics and its interobserver
    collection share scans). Copies with the same number of files are taken as the same scan,
    with one warning naming the folders; copies that differ are refused (one is incomplete).
    """
    copies: dict[str, list[pd.Series]] = {}
    for _, row in ct.sort_values("folder", key=lambda folders: folders.map(str)).iterrows():
        copies.setdefault(str(row["series_uid"]), []).append(row)
    repeated = {uid: rows for uid, rows in copies.items() if len(rows) > 1}
    for uid, rows in repeated.items():
        if len({int(r["n_files"]) for r in rows}) > 1:
            listing = "; ".join(f"{r['folder']} ({r['n_files']} files)" for r in rows)
            raise DataFormatError(
                rows[0]["folder"], f"CT series {uid} is also in other folders with another number of files ({listing}): one copy is incomplete"
            )
    if repeated:
        uid, rows = next(iter(repeated.items()))
        warnings.warn(
            f"{len(repeated)} CT series are in more than one folder (e.g. {uid} in {', '.join(str(r['folder']) for r in rows)}): "
            "each RTSTRUCT is matched to the copy in its own collection, else the first",
            DataWarning,
            stacklevel=3,
        )
    return copies


def max_diameter_mm(mask: Volume) -> float:
    """Largest distance (mm) between two voxel centres of a binary mask (via its convex hull)."""
    points = np.argwhere(mask.array > 0) * np.asarray(mask.spacing)
    if len(points) < 2:
        return 0.0
    try:
        points = points[ConvexHull(points).vertices]
    except Exception:  # flat or tiny masks have no 3D hull; use every point
        pass
    return float(pdist(points).max())


def _native_box(volume: Volume, centre_mm: np.ndarray, half_mm: float) -> Volume:
    """The part of ``volume`` within ``half_mm`` of a point (cheap to resample, unlike the whole scan)."""
    centre = volume.mm_to_index(centre_mm)
    reach = half_mm / np.asarray(volume.spacing) + 2
    start = np.clip(np.floor(centre - reach).astype(int), 0, None)
    stop = np.minimum(np.ceil(centre + reach).astype(int) + 1, volume.shape)
    box = tuple(slice(a, b) for a, b in zip(start, stop))
    return volume.with_array(volume.array[box], origin=volume.index_to_mm(start))


def tumour_cube(
    ct_folder: str | os.PathLike, rtstruct: str | os.PathLike, settings: CubeSettings = CubeSettings()
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Cut one tumour cube, as the paper's preprocessing does (see the module docstring).

    Returns
    -------
    cube : float32 array, shape (s, s, s)
        ``(HU + 1024) / 4095`` with ``s = settings.stored_voxels``; air where the cube leaves the scan.
    mask : uint8 array, same shape
        The contour, resampled with nearest neighbour.
    info : dict
        ``volume_ml`` and ``max_diameter_mm`` of the contour, ``centre_x/y/z_mm``.

    Raises
    ------
    DataFormatError
        Unreadable series, missing ROI, or a contour that covers no voxel of the scan.
    """
    ct = read_dicom_series(ct_folder)
    mask = rtstruct_mask(rtstruct, ct, roi=settings.roi)
    if not mask.array.any():
        raise DataFormatError(rtstruct, f"ROI {settings.roi!r} covers no voxel of the CT series in {ct_folder}")
    centre = mask_centroid_mm(mask)
    voxel_ml = float(np.prod(mask.spacing)) / 1000
    info = {
        "volume_ml": float(mask.array.astype(bool).sum() * voxel_ml),
        "max_diameter_mm": max_diameter_mm(mask),
        "centre_x_mm": float(centre[0]),
        "centre_y_mm": float(centre[1]),
        "centre_z_mm": float(centre[2]),
    }
    side_mm = settings.stored_voxels * settings.spacing_mm
    ct_box, mask_box = _native_box(ct, centre, side_mm / 2), _native_box(mask, centre, side_mm / 2)
    iso = resample_to_spacing(ct_box, settings.spacing_mm, order=1)
    iso_mask = resample_to_spacing(mask_box, settings.spacing_mm, order=0)
    cube = crop_cube(iso, centre, side_mm, fill=-1024.0).array
    cube_mask = crop_cube(iso_mask, centre, side_mm, fill=0).array
    return scale_hu(cube), (cube_mask > 0).astype(np.uint8), info


@dataclass
class TumourCubes:
    """Cubes of a table of scans, row-aligned with it.

    Attributes
    ----------
    scans : DataFrame
        The input rows plus the contour's ``volume_ml``, ``max_diameter_mm`` and centre.
    cubes : float32 array, shape (n, s, s, s)
    masks : uint8 array, shape (n, s, s, s)
    settings : CubeSettings
    """

    scans: pd.DataFrame
    cubes: np.ndarray
    masks: np.ndarray
    settings: CubeSettings

    def __len__(self) -> int:
        return len(self.scans)

    def subset(self, rows: np.ndarray | pd.Series) -> TumourCubes:
        """The rows selected by a boolean mask or integer positions."""
        positions = np.flatnonzero(np.asarray(rows)) if np.asarray(rows).dtype == bool else np.asarray(rows)
        return TumourCubes(self.scans.iloc[positions].reset_index(drop=True), self.cubes[positions], self.masks[positions], self.settings)


def _cache_file(cache_dir: Path, row: pd.Series, settings: CubeSettings) -> Path:
    rtstruct = Path(row["rtstruct"])
    stat = rtstruct.stat()
    key = "|".join(str(v) for v in (row["ct_series_uid"], rtstruct.name, stat.st_size, stat.st_mtime_ns, sorted(asdict(settings).items())))
    return cache_dir / f"{row['patient_id']}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _extract_one(ct_folder: str, rtstruct: str, settings: CubeSettings, target: str) -> None:
    cube, mask, info = tumour_cube(ct_folder, rtstruct, settings)
    with atomic_path(target) as partial:
        with open(partial, "wb") as handle:
            np.savez(handle, cube=cube, mask=mask, **{k: np.float64(v) for k, v in info.items()})


def extract_tumour_cubes(
    scans: pd.DataFrame,
    settings: CubeSettings = CubeSettings(),
    *,
    cache_dir: str | os.PathLike,
    workers: int | None = None,
    progress: bool = True,
) -> TumourCubes:
    """Cut (or read back from the cache) the tumour cube of every scan.

    Parameters
    ----------
    scans : DataFrame
        Rows of :func:`index_ct_scans` (``patient_id``, ``ct_folder``, ``rtstruct``, ``ct_series_uid``).
    settings : CubeSettings
    cache_dir : path-like
        One ``.npz`` per scan, keyed by the series, the RTSTRUCT file and the settings.
    workers : int, optional
        Processes; default ``min(2, cpu count)``.
    progress : bool, default True

    Returns
    -------
    TumourCubes

    Raises
    ------
    DataFormatError
        For the first scan that cannot be read, naming its file; the cubes cut before it stay
        in the cache, so fixing or removing that scan and re-running resumes.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    scans = scans.reset_index(drop=True)
    files = [_cache_file(cache_dir, row, settings) for _, row in scans.iterrows()]
    todo = [
        (str(row["ct_folder"]), str(row["rtstruct"]), settings, str(target))
        for (_, row), target in zip(scans.iterrows(), files)
        if not target.is_file()
    ]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    bar = tqdm(total=len(todo), desc="tumour cubes", leave=False, disable=not progress or not todo)
    try:
        if workers <= 1 or len(todo) < 4:
            for job in todo:
                _extract_one(*job)
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                for future in [pool.submit(_extract_one, *job) for job in todo]:
                    future.result()
                    bar.update()
    finally:
        bar.close()
    cubes, masks, infos = [], [], []
    for path in files:
        with np.load(path) as stored:
            cubes.append(stored["cube"])
            masks.append(stored["mask"])
            infos.append({k: float(stored[k]) for k in stored.files if k not in ("cube", "mask")})
    table = pd.concat([scans, pd.DataFrame(infos)], axis=1)
    return TumourCubes(table, np.stack(cubes), np.stack(masks), settings)
