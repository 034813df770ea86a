"""DICOM CT series and RTSTRUCT contours, as TCIA distributes NSCLC-Radiomics.

A CT series is a folder of files, one per axial slice. To build a volume we must

* keep one series (a folder can hold several: a scout, a contrast phase...),
* order slices by their position along the slice normal (``ImagePositionPatient`` projected
  on the cross product of the two ``ImageOrientationPatient`` vectors) - never by file name
  or ``InstanceNumber``, which are not reliable,
* check the gaps between slices (a missing file would silently squash the anatomy),
* convert stored values to Hounsfield units with ``RescaleSlope`` and ``RescaleIntercept``.

An RTSTRUCT file holds each region of interest (``ROIName``, e.g. ``GTV-1``) as closed
polygons in patient millimetres, one or more per slice; we rasterise them on the CT grid.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError

from .errors import DataFormatError, DataWarning
from .volumes import Volume

__all__ = ["read_dicom_series", "list_rtstruct_rois", "read_rtstruct_contours", "rtstruct_mask", "find_rtstruct", "index_dicom_folder"]

_RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
_DICOM_SUFFIXES = {".dcm", ".dicom"}


def _read_header(path: Path) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError) as error:
        raise DataFormatError(path, f"a corrupt DICOM file: its header cannot be read ({type(error).__name__}: {error})") from error


def _has_dicom_marker(path: Path) -> bool:
    """Whether a file starts like a DICOM file: a 128-byte preamble, then ``DICM`` (DICOM part 10)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError as error:
        raise DataFormatError(path, f"cannot be read ({error})") from error


def _dicom_files(folder: Path) -> list[Path]:
    """The DICOM files under ``folder`` (recursively), sorted; others are skipped with one warning.

    A file is DICOM when it carries the part-10 ``DICM`` marker (every TCIA file does). Files
    without it - a ``README.txt``, a ``.json`` sidecar, a thumbnail - are skipped, and counted
    in one :class:`DataWarning` when they sit in a folder with DICOM files. A ``.dcm`` file without the marker is corrupt and refused
    here; a file with the marker that cannot be read is refused where it is read.
    """
    if not folder.is_dir():
        raise DataFormatError(folder, "no such DICOM folder")
    candidates = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not candidates:
        raise DataFormatError(folder, "the folder holds no files")
    files, others = [], []
    for path in candidates:
        if _has_dicom_marker(path):
            files.append(path)
        elif path.suffix.lower() in _DICOM_SUFFIXES:
            raise DataFormatError(path, "a corrupt DICOM file: named like one, but without the 'DICM' marker at byte 128 (truncated or overwritten?)")
        else:
            others.append(path)
    series_folders = {path.parent for path in files}
    strays = [path for path in others if path.parent in series_folders]  # a clinical CSV beside the collections is expected
    if strays:
        names = ", ".join(str(p.relative_to(folder)) for p in strays[:3]) + (", ..." if len(strays) > 3 else "")
        warnings.warn(
            f"{folder}: skipped {len(strays)} file(s) that are not DICOM (no 'DICM' marker) beside DICOM files: {names}", DataWarning, stacklevel=3
        )
    if not files:
        raise DataFormatError(folder, f"holds no DICOM files (none of its {len(candidates)} file(s) has the 'DICM' marker)")
    return files


def _slice_normal(header: pydicom.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    orientation = np.asarray(header.ImageOrientationPatient, dtype=float)
    row_direction, column_direction = orientation[:3], orientation[3:]
    return row_direction, column_direction, np.cross(row_direction, column_direction)


def read_dicom_series(folder: str | os.PathLike, *, series_uid: str | None = None, gap_tolerance: float = 0.1) -> Volume:
    """Read one CT (or MR) image series from a folder into a :class:`Volume` of Hounsfield units.

    Parameters
    ----------
    folder : path-like
        Folder with the series' files (searched recursively). RTSTRUCT and other non-image
        DICOM files are ignored; files that are not DICOM at all (a ``README.txt``) are
        skipped with a warning.
    series_uid : str, optional
        Which ``SeriesInstanceUID`` to read when the folder holds several.
    gap_tolerance : float, default 0.1
        Allowed relative deviation of each slice gap from the median gap.

    Returns
    -------
    Volume
        ``array`` in HU (float32), ``spacing`` (slice gap, row spacing, column spacing) in mm,
        ``metadata`` with ``patient_id``, ``series_uid``, ``sop_uids`` (one per slice, in
        order), ``files`` and ``modality``.

    Raises
    ------
    DataFormatError
        A corrupt DICOM file, several series mixed (and ``series_uid`` not given),
        inconsistent slice geometry, or a missing slice.
    """
    folder = Path(folder)
    series: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    for path in _dicom_files(folder):
        header = _read_header(path)
        if "ImagePositionPatient" not in header or "PixelSpacing" not in header:
            continue  # RTSTRUCT, reports, presentation states...
        series[str(header.SeriesInstanceUID)].append((path, header))
    if not series:
        raise DataFormatError(folder, "no DICOM image slices found")
    if series_uid is None and len(series) > 1:
        listing = ", ".join(f"{uid} ({len(files)} files, {files[0][1].get('Modality', '?')})" for uid, files in series.items())
        raise DataFormatError(folder, f"holds {len(series)} image series mixed together: {listing}; pass series_uid=")
    uid = series_uid if series_uid is not None else next(iter(series))
    if uid not in series:
        raise DataFormatError(folder, f"has no series {uid}; found {sorted(series)}")
    slices = series[uid]

    first = slices[0][1]
    row_direction, column_direction, normal = _slice_normal(first)
    for path, header in slices:
        if not np.allclose(header.ImageOrientationPatient, first.ImageOrientationPatient, atol=1e-4):
            raise DataFormatError(path, "its ImageOrientationPatient differs from the rest of the series")
        if (header.Rows, header.Columns) != (first.Rows, first.Columns):
            raise DataFormatError(path, f"is {header.Rows}x{header.Columns} px, the series is {first.Rows}x{first.Columns}")
    positions = np.array([np.dot(np.asarray(h.ImagePositionPatient, dtype=float), normal) for _, h in slices])
    order = np.argsort(positions)
    slices = [slices[i] for i in order]
    positions = positions[order]
    if len(slices) > 1:
        gaps = np.diff(positions)
        if np.any(gaps < 1e-3):
            duplicate = int(np.argmin(gaps))
            raise DataFormatError(slices[duplicate + 1][0], f"has the same position as {slices[duplicate][0].name} (a duplicated slice?)")
        typical = float(np.median(gaps))
        bad = np.flatnonzero(np.abs(gaps - typical) > gap_tolerance * typical)
        if bad.size:
            k = int(bad[0])
            missing = round(gaps[k] / typical) - 1
            raise DataFormatError(
                folder,
                f"missing slice: the gap between z = {positions[k]:.2f} mm ({slices[k][0].name}) and z = "
                f"{positions[k + 1]:.2f} mm ({slices[k + 1][0].name}) is {gaps[k]:.2f} mm, the series spacing is "
                f"{typical:.2f} mm (about {max(missing, 0)} slice(s) absent)",
            )
        slice_gap = typical
    else:
        slice_gap = float(first.get("SliceThickness", 1.0) or 1.0)

    planes = []
    for path, _ in slices:
        try:
            dataset = pydicom.dcmread(path)
            pixels = dataset.pixel_array.astype(np.float32)
        except Exception as error:  # pixel decoding raises many types
            raise DataFormatError(path, f"cannot decode its pixel data ({error})") from error
        slope = float(dataset.get("RescaleSlope", 1.0))
        intercept = float(dataset.get("RescaleIntercept", 0.0))
        planes.append(pixels * slope + intercept)
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    return Volume(
        array=np.stack(planes).astype(np.float32),
        spacing=(slice_gap, row_spacing, column_spacing),
        origin=np.asarray(slices[0][1].ImagePositionPatient, dtype=float),
        axes=np.column_stack([normal, column_direction, row_direction]),
        metadata={
            "patient_id": str(first.get("PatientID", "")),
            "series_uid": uid,
            "frame_of_reference_uid": str(first.get("FrameOfReferenceUID", "")),
            "modality": str(first.get("Modality", "")),
            "sop_uids": [str(h.SOPInstanceUID) for _, h in slices],
            "files": [str(p) for p, _ in slices],
        },
    )


def find_rtstruct(folder: str | os.PathLike) -> Path:
    """The single RTSTRUCT file under ``folder`` (TCIA puts it in its own series folder)."""
    folder = Path(folder)
    found = [p for p in _dicom_files(folder) if str(_read_header(p).get("SOPClassUID", "")) == _RTSTRUCT_SOP_CLASS]
    if len(found) != 1:
        raise DataFormatError(folder, f"expected one RTSTRUCT file, found {len(found)}: {[p.name for p in found]}")
    return found[0]


def _rtstruct(path: Path) -> pydicom.Dataset:
    if not Path(path).is_file():
        raise DataFormatError(path, "no such RTSTRUCT file")
    dataset = _read_header(Path(path))
    if str(dataset.get("SOPClassUID", "")) != _RTSTRUCT_SOP_CLASS and dataset.get("Modality") != "RTSTRUCT":
        raise DataFormatError(path, f"is not an RTSTRUCT (Modality {dataset.get('Modality', '?')})")
    return dataset


def list_rtstruct_rois(path: str | os.PathLike) -> list[str]:
    """Names of the regions of interest in an RTSTRUCT file."""
    dataset = _rtstruct(Path(path))
    return [str(roi.ROIName) for roi in dataset.get("StructureSetROISequence", [])]


def read_rtstruct_contours(path: str | os.PathLike, roi: str = "GTV-1") -> list[np.ndarray]:
    """The closed planar contours of one ROI, each an (n_points, 3) array in patient mm.

    Raises
    ------
    DataFormatError
        The file is not an RTSTRUCT, or has no ROI of that name (the message lists those it has).
    """
    path = Path(path)
    dataset = _rtstruct(path)
    numbers = {str(r.ROIName).strip().lower(): int(r.ROINumber) for r in dataset.get("StructureSetROISequence", [])}
    if roi.strip().lower() not in numbers:
        raise DataFormatError(path, f"has no ROI named {roi!r}; it has {list_rtstruct_rois(path)}")
    number = numbers[roi.strip().lower()]
    contours = []
    for roi_contour in dataset.get("ROIContourSequence", []):
        if int(roi_contour.ReferencedROINumber) != number:
            continue
        for contour in roi_contour.get("ContourSequence", []):
            points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
            if len(points) >= 3:
                contours.append(points)
    if not contours:
        raise DataFormatError(path, f"ROI {roi!r} has no contour with at least three points")
    return contours


def rtstruct_mask(path: str | os.PathLike, reference: Volume, roi: str = "GTV-1") -> Volume:
    """Rasterise an RTSTRUCT ROI on the grid of its CT volume.

    Polygons on the same slice are combined by the even-odd rule, so a contour drawn
    inside another is a hole (the convention of most planning systems).

    Parameters
    ----------
    path : path-like
        The RTSTRUCT file.
    reference : Volume
        The CT it was drawn on (from :func:`read_dicom_series`).
    roi : str, default "GTV-1"
        ROI name (case-insensitive), e.g. NSCLC-Radiomics' primary gross tumour volume.

    Returns
    -------
    Volume
        uint8 mask with the CT's geometry; ``metadata["roi"]`` names the ROI.
    """
    from skimage.draw import polygon as fill_polygon

    path = Path(path)
    mask = np.zeros(reference.shape, dtype=np.uint8)
    for points in read_rtstruct_contours(path, roi):
        index = reference.mm_to_index(points)
        k = float(np.median(index[:, 0]))
        if abs(k - round(k)) > 0.25 or not 0 <= round(k) < reference.shape[0]:
            raise DataFormatError(path, f"a {roi!r} contour lies at slice {k:.2f}, not on a slice of the CT")
        rows, cols = fill_polygon(index[:, 1], index[:, 2], shape=reference.shape[1:])
        mask[round(k), rows, cols] ^= 1
    return reference.with_array(mask, metadata={**reference.metadata, "roi": roi, "rtstruct": str(path)})


def _referenced_series_uid(header: pydicom.Dataset) -> str:
    """The image series an RTSTRUCT's contours were drawn on ('' for other files)."""
    for frame in header.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                return str(series.get("SeriesInstanceUID", ""))
    return ""


def index_dicom_folder(root: str | os.PathLike, *, first_file_only: bool = False) -> pd.DataFrame:
    """One row per DICOM series under ``root``: where a TCIA download put what.

    Parameters
    ----------
    root : path-like
    first_file_only : bool, default False
        Read the header of one file per folder and count the others, which is much faster on
        large collections. Right for TCIA downloads (one series per folder); leave it off for
        folders that may mix series.

    Returns
    -------
    DataFrame
        Columns ``patient_id``, ``study_uid``, ``series_uid``, ``modality``, ``folder`` (the
        folder holding the series' files), ``n_files`` and ``referenced_series_uid`` (for an
        RTSTRUCT: the image series its contours belong to; else empty).

    Files that are not DICOM are skipped with one warning, as in :func:`read_dicom_series`.

    Raises
    ------
    DataFormatError
        Unreadable DICOM files, named.
    """
    rows: dict[tuple[str, str], dict[str, object]] = {}
    files = _dicom_files(Path(root))
    by_folder: dict[Path, list[Path]] = {}
    for path in files:
        by_folder.setdefault(path.parent, []).append(path)
    for folder, members in by_folder.items():
        for path in members[:1] if first_file_only else members:
            header = _read_header(path)
            key = (str(header.SeriesInstanceUID), str(folder))
            row = rows.setdefault(
                key,
                {
                    "patient_id": str(header.get("PatientID", "")),
                    "study_uid": str(header.get("StudyInstanceUID", "")),
                    "series_uid": key[0],
                    "modality": str(header.get("Modality", "")),
                    "folder": folder,
                    "n_files": 0,
                    "referenced_series_uid": _referenced_series_uid(header),
                },
            )
            row["n_files"] = int(row["n_files"]) + (len(members) if first_file_only else 1)  # type: ignore[call-overload]
    columns = ["patient_id", "study_uid", "series_uid", "modality", "folder", "n_files", "referenced_series_uid"]
    return pd.DataFrame(list(rows.values()), columns=columns)
