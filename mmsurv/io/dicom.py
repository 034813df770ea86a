"""DICOM CT series and RTSTRUCT contours, as TCIA distributes NSCLC-Radiomics.

A CT series is a folder of files, one per axial slice. To build a volume we must

* keep one series (a folder can hold several: a scout, a contrast phase...),
* order slices by their position along the slice normal (``ImagePositionPatient`` projected
  on the cross product of the two ``ImageOrientationPatient`` vectors) - never by file name
  or ``InstanceNumber``, which are not reliable,
* check the gaps between slices (a missing file would silently squash the anatomy),
* convert stored values to Hounsfield units with ``RescaleSlope`` and ``RescaleIntercept``.

Scanners and PACS exports also write *enhanced* multi-frame files: a whole series in one
file, each frame's position in its ``PerFrameFunctionalGroupsSequence`` and what all frames
share (orientation, pixel spacing, rescale) in the ``SharedFunctionalGroupsSequence``. They
are read frame by frame, as if each frame were a file (:mod:`mmsurv.io.dicom_geometry` reads
where each slice lies, tag by tag). Compressed files (JPEG lossless, JPEG-LS, JPEG 2000) are
decoded by pydicom's pylibjpeg plugins.

An RTSTRUCT file holds each region of interest (``ROIName``, e.g. ``GTV-1``) as closed
polygons in patient millimetres, one or more per slice; we rasterise them on the CT grid.

Real files lack tags, carry damaged values, or are cut short. pydicom parses values only when
they are used, so such damage surfaces far from ``dcmread`` as a KeyError, ValueError or
AttributeError; every reader here turns it into a :class:`DataFormatError` that names the file
(and the tag, where one is missing).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom

from .dicom_geometry import check_series_geometry, file_errors, is_volume_slice, required_tag, slice_frames, sop_class, tag_name, tag_numbers
from .errors import DataFormatError, DataWarning
from .volumes import Volume

__all__ = ["read_dicom_series", "list_rtstruct_rois", "read_rtstruct_contours", "rtstruct_mask", "find_rtstruct", "index_dicom_folder"]

_RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory: the index of a CD or PACS export
_DICOM_SUFFIXES = {".dcm", ".dicom"}


def _read_header(path: Path) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as error:  # pydicom raises many types on damaged files
        raise DataFormatError(path, f"a corrupt DICOM file: its header cannot be read ({type(error).__name__}: {error})") from error


def _is_dicomdir(path: Path, header: pydicom.Dataset | None = None) -> bool:
    """A DICOMDIR: the directory file of a CD or a PACS export, which lists files but is no image."""
    if path.name.upper() == "DICOMDIR":  # the name the standard requires (PS3.10)
        return True
    return header is not None and (sop_class(header) == _DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in header)


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
    in one :class:`DataWarning` when they sit in a folder with DICOM files. A ``.dcm`` file without the marker, and an empty
    file beside DICOM files, are corrupt and refused here; a file with the marker that cannot be read is refused where it is read. A ``DICOMDIR``
    (the directory file of a CD or PACS export) is left out: it lists the files, which are read
    themselves.
    """
    if not folder.is_dir():
        raise DataFormatError(folder, "no such DICOM folder")
    candidates = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not candidates:
        raise DataFormatError(folder, "the folder holds no files")
    files, others = [], []
    for path in candidates:
        if _is_dicomdir(path):
            continue
        if _has_dicom_marker(path):
            files.append(path)
        elif path.suffix.lower() in _DICOM_SUFFIXES:
            raise DataFormatError(path, "a corrupt DICOM file: named like one, but without the 'DICM' marker at byte 128 (truncated or overwritten?)")
        else:
            others.append(path)
    series_folders = {path.parent for path in files}
    strays = [path for path in others if path.parent in series_folders]  # a clinical CSV beside the collections is expected
    for path in strays:
        if path.stat().st_size == 0:  # not a sidecar: a slice whose download or copy was cut short
            raise DataFormatError(path, "an empty file among DICOM files (a download or copy cut short?)")
    if strays:
        names = ", ".join(str(p.relative_to(folder)) for p in strays[:3]) + (", ..." if len(strays) > 3 else "")
        warnings.warn(
            f"{folder}: skipped {len(strays)} file(s) that are not DICOM (no 'DICM' marker) beside DICOM files: {names}", DataWarning, stacklevel=3
        )
    if not files:
        raise DataFormatError(folder, f"holds no DICOM files (none of its {len(candidates)} file(s) has the 'DICM' marker)")
    return files


def _decode(path: Path, expected: tuple[int, int, int]) -> np.ndarray:
    """A file's stored pixel values, shape ``expected`` (frames, rows, columns); any error names the file."""
    try:
        dataset = pydicom.dcmread(path)
    except Exception as error:  # pydicom raises many types on damaged files
        raise DataFormatError(path, f"a corrupt DICOM file: it cannot be read ({type(error).__name__}: {error})") from error
    if "PixelData" not in dataset:
        raise DataFormatError(path, f"has no {tag_name('PixelData')} (cut short?)")
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # pixel decoding raises many types
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = f" ({syntax.name})" if syntax is not None else ""
        raise DataFormatError(path, f"cannot decode its pixel data{name}: {error}") from error
    if pixels.ndim == 2:  # one frame
        pixels = pixels[np.newaxis]
    if pixels.shape != expected:
        raise DataFormatError(
            path, f"its pixel data has shape {pixels.shape}, not {expected} (a colour image, or Rows / Columns / NumberOfFrames wrong?)"
        )
    return pixels


def read_dicom_series(folder: str | os.PathLike, *, series_uid: str | None = None, gap_tolerance: float = 0.1) -> Volume:
    """Read one CT (or MR) image series from a folder into a :class:`Volume` of Hounsfield units.

    Parameters
    ----------
    folder : path-like
        Folder with the series' files (searched recursively): one file per slice, or enhanced
        multi-frame files (a stack of slices each), uncompressed or compressed (JPEG, JPEG
        lossless, JPEG-LS, JPEG 2000, RLE). RTSTRUCT and other non-image DICOM files, and a
        ``DICOMDIR``, are ignored; files that are not DICOM at all (a ``README.txt``) are
        skipped with a warning.
    series_uid : str, optional
        Which ``SeriesInstanceUID`` to read when the folder holds several.
    gap_tolerance : float, default 0.1
        Allowed relative deviation of each slice gap from the median gap.

    Returns
    -------
    Volume
        ``array`` in HU (float32; for MR, the stored values rescaled as the file says),
        ``spacing`` (slice gap, row spacing, column spacing) in mm, ``metadata`` with
        ``patient_id``, ``series_uid``, ``sop_uids`` and ``files`` (one per slice, in order: a
        multi-frame file repeats) and ``modality``.

    Raises
    ------
    DataFormatError
        A corrupt DICOM file; a slice without ``SeriesInstanceUID``, ``ImagePositionPatient``,
        ``ImageOrientationPatient`` or ``PixelSpacing``; a CT slice without
        ``RescaleIntercept`` / ``RescaleSlope``; a multi-frame file without per-frame
        positions; several series mixed (and ``series_uid`` not given); inconsistent slice
        geometry; a missing slice; pixel data that cannot be decoded. Each names the file
        (and the tag).
    """
    folder = Path(folder)
    headers: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    for path in _dicom_files(folder):
        header = _read_header(path)
        with file_errors(path, "reading its header"):
            if not is_volume_slice(header):
                continue  # RTSTRUCT, reports, presentation states, dose screenshots...
            headers[str(required_tag(path, header, "SeriesInstanceUID"))].append((path, header))
    if not headers:
        raise DataFormatError(folder, "no DICOM image slices found (no CT, MR or PET image, and no file with ImagePositionPatient and PixelSpacing)")
    if series_uid is None and len(headers) > 1:
        listing = ", ".join(f"{uid} ({len(files)} files, {files[0][1].get('Modality', '?')})" for uid, files in headers.items())
        raise DataFormatError(folder, f"holds {len(headers)} image series mixed together: {listing}; pass series_uid=")
    uid = series_uid if series_uid is not None else next(iter(headers))
    if uid not in headers:
        raise DataFormatError(folder, f"has no series {uid}; found {sorted(headers)}")
    first_header = headers[uid][0][1]
    slices = [frame for path, header in headers[uid] for frame in slice_frames(path, header)]
    sizes = {path: (int(header.Rows), int(header.Columns)) for path, header in headers[uid]}  # checked by slice_frames
    check_series_geometry(slices, sizes)

    first = slices[0]
    row_direction, column_direction = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row_direction, column_direction)
    positions = np.array([np.dot(frame.position, normal) for frame in slices])
    order = np.argsort(positions, kind="stable")
    slices = [slices[i] for i in order]
    positions = positions[order]
    if len(slices) > 1:
        gaps = np.diff(positions)
        if np.any(gaps < 1e-3):
            duplicate = int(np.argmin(gaps))
            twin = slices[duplicate + 1]
            raise DataFormatError(
                twin.path,
                f"{twin.label} has the same position as {slices[duplicate].label} (a duplicated slice, or several stacks - echoes, "
                "time points, b-values - in one series?)",
            )
        typical = float(np.median(gaps))
        bad = np.flatnonzero(np.abs(gaps - typical) > gap_tolerance * typical)
        if bad.size:
            k = int(bad[0])
            missing = round(gaps[k] / typical) - 1
            raise DataFormatError(
                folder,
                f"missing slice: the gap between z = {positions[k]:.2f} mm ({slices[k].label}) and z = "
                f"{positions[k + 1]:.2f} mm ({slices[k + 1].label}) is {gaps[k]:.2f} mm, the series spacing is "
                f"{typical:.2f} mm (about {max(missing, 0)} slice(s) absent)",
            )
        slice_gap = typical
    else:
        slice_gap = first.thickness or 1.0

    frame_counts = Counter(frame.path for frame in slices)
    decoded: dict[Path, np.ndarray] = {}  # a multi-frame file is decoded once, for all its frames
    planes = []
    for frame in slices:
        if frame.path not in decoded:
            decoded[frame.path] = _decode(frame.path, (frame_counts[frame.path], *sizes[frame.path]))
        pixels = decoded[frame.path][frame.frame or 0].astype(np.float32)
        planes.append(pixels * frame.slope + frame.intercept)
        if frame.frame is None:
            del decoded[frame.path]  # one slice per file: keep no more than the planes
    row_spacing, column_spacing = (float(v) for v in first.pixel_spacing)
    with file_errors(first.path, "reading its patient and series tags"):
        metadata = {
            "patient_id": str(first_header.get("PatientID", "")),
            "series_uid": uid,
            "frame_of_reference_uid": str(first_header.get("FrameOfReferenceUID", "")),
            "modality": str(first_header.get("Modality", "")),
            "sop_uids": [frame.sop_uid for frame in slices],
            "files": [str(frame.path) for frame in slices],
        }
    return Volume(
        array=np.stack(planes).astype(np.float32),
        spacing=(slice_gap, row_spacing, column_spacing),
        origin=slices[0].position,
        axes=np.column_stack([normal, column_direction, row_direction]),
        metadata=metadata,
    )


def _is_rtstruct(header: pydicom.Dataset) -> bool:
    return sop_class(header) == _RTSTRUCT_SOP_CLASS or header.get("Modality") == "RTSTRUCT"


def find_rtstruct(folder: str | os.PathLike) -> Path:
    """The single RTSTRUCT file under ``folder`` (TCIA puts it in its own series folder).

    Raises
    ------
    DataFormatError
        No RTSTRUCT or several (naming the folder), or a DICOM file whose header cannot be read
        or has no ``SOPClassUID`` - a file cut short - (naming that file).
    """
    folder = Path(folder)
    found = []
    for path in _dicom_files(folder):
        header = _read_header(path)
        with file_errors(path, "reading its header"):
            if not sop_class(header):  # required in every DICOM file: without it, one cannot tell what the file is
                raise DataFormatError(path, f"has no {tag_name('SOPClassUID')} (cut short or damaged?)")
            if _is_rtstruct(header):
                found.append(path)
    if len(found) != 1:
        raise DataFormatError(folder, f"expected one RTSTRUCT file, found {len(found)}: {[p.name for p in found]}")
    return found[0]


def _sequence(path: Path, dataset: pydicom.Dataset, keyword: str) -> list[pydicom.Dataset]:
    """The items of a sequence (none when it is absent); a value that is no sequence is refused."""
    if keyword not in dataset:
        return []
    element = dataset[keyword]
    if not isinstance(element.value, pydicom.Sequence):
        raise DataFormatError(path, f"its {tag_name(keyword)} is not a sequence (VR {element.VR}, value {element.value!r:.60})")
    return list(element.value)


def _rtstruct(path: Path) -> pydicom.Dataset:
    if not Path(path).is_file():
        raise DataFormatError(path, "no such RTSTRUCT file")
    dataset = _read_header(Path(path))
    with file_errors(path, "reading its header"):
        if not _is_rtstruct(dataset):
            raise DataFormatError(path, f"is not an RTSTRUCT (Modality {dataset.get('Modality', '?')})")
    return dataset


def _roi_numbers(path: Path, dataset: pydicom.Dataset) -> dict[str, tuple[str, int]]:
    """Lower-cased ROI name -> (ROIName as written, ROINumber), from ``StructureSetROISequence``."""
    where = " (an item of StructureSetROISequence)"
    rois = {}
    for item in _sequence(path, dataset, "StructureSetROISequence"):
        name = str(required_tag(path, item, "ROIName", where))
        number = int(tag_numbers(path, required_tag(path, item, "ROINumber", where), "ROINumber", 1, f" of ROI {name!r}")[0])
        rois[name.strip().lower()] = (name, number)
    return rois


def list_rtstruct_rois(path: str | os.PathLike) -> list[str]:
    """Names of the regions of interest in an RTSTRUCT file."""
    path = Path(path)
    dataset = _rtstruct(path)
    with file_errors(path, "reading its StructureSetROISequence"):
        return [
            str(required_tag(path, item, "ROIName", " (an item of StructureSetROISequence)"))
            for item in _sequence(path, dataset, "StructureSetROISequence")
        ]


def read_rtstruct_contours(path: str | os.PathLike, roi: str = "GTV-1") -> list[np.ndarray]:
    """The closed planar contours of one ROI, each an (n_points, 3) array in patient mm.

    Raises
    ------
    DataFormatError
        The file is not an RTSTRUCT, has no ROI of that name (the message lists those it has),
        or its contours are damaged (a missing ``ContourData``, numbers that are no x, y, z
        triples...).
    """
    path = Path(path)
    dataset = _rtstruct(path)
    with file_errors(path, f"reading the contours of ROI {roi!r}"):
        rois = _roi_numbers(path, dataset)
        if roi.strip().lower() not in rois:
            raise DataFormatError(path, f"has no ROI named {roi!r}; it has {[name for name, _ in rois.values()]}")
        number = rois[roi.strip().lower()][1]
        contours = []
        for roi_contour in _sequence(path, dataset, "ROIContourSequence"):
            where = " (an item of ROIContourSequence)"
            if int(tag_numbers(path, required_tag(path, roi_contour, "ReferencedROINumber", where), "ReferencedROINumber", 1, where)[0]) != number:
                continue
            for contour in _sequence(path, roi_contour, "ContourSequence"):
                data = required_tag(path, contour, "ContourData", f" (a contour of ROI {roi!r})")
                values = tag_numbers(path, data, "ContourData", None, f" of ROI {roi!r}")
                if values.size % 3:
                    raise DataFormatError(path, f"a ContourData of ROI {roi!r} holds {values.size} numbers, not x, y, z triples")
                points = values.reshape(-1, 3)
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


def _referenced_series_uid(path: Path, header: pydicom.Dataset) -> str:
    """The image series an RTSTRUCT's contours were drawn on ('' for other files)."""
    for frame in _sequence(path, header, "ReferencedFrameOfReferenceSequence"):
        for study in _sequence(path, frame, "RTReferencedStudySequence"):
            for series in _sequence(path, study, "RTReferencedSeriesSequence"):
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

    Files that are not DICOM are skipped with one warning, as in :func:`read_dicom_series`;
    a ``DICOMDIR`` (the directory file of a CD or PACS export) is skipped without one: the
    files it lists are indexed themselves.

    Raises
    ------
    DataFormatError
        Unreadable DICOM files, or files without ``SeriesInstanceUID``, named.
    """
    rows: dict[tuple[str, str], dict[str, object]] = {}
    files = _dicom_files(Path(root))
    by_folder: dict[Path, list[Path]] = {}
    for path in files:
        by_folder.setdefault(path.parent, []).append(path)
    for folder, members in by_folder.items():
        for path in members:
            header = _read_header(path)
            with file_errors(path, "reading its header"):
                if _is_dicomdir(path, header):  # a DICOMDIR under another name
                    continue
                key = (str(required_tag(path, header, "SeriesInstanceUID")), str(folder))
                row = rows.setdefault(
                    key,
                    {
                        "patient_id": str(header.get("PatientID", "")),
                        "study_uid": str(header.get("StudyInstanceUID", "")),
                        "series_uid": key[0],
                        "modality": str(header.get("Modality", "")),
                        "folder": folder,
                        "n_files": 0,
                        "referenced_series_uid": _referenced_series_uid(path, header),
                    },
                )
            row["n_files"] = int(row["n_files"]) + (len(members) if first_file_only else 1)  # type: ignore[call-overload]
            if first_file_only:
                break
    columns = ["patient_id", "study_uid", "series_uid", "modality", "folder", "n_files", "referenced_series_uid"]
    return pd.DataFrame(list(rows.values()), columns=columns)
