"""Where each slice of a DICOM image file lies, read tag by tag with the file's name on every error.

:mod:`mmsurv.io.dicom` builds volumes from these slices. A classic CT / MR / PET file is one
slice: ``ImagePositionPatient``, ``ImageOrientationPatient``, ``PixelSpacing`` and (for CT)
``RescaleSlope`` / ``RescaleIntercept`` in the dataset itself. An *enhanced* multi-frame file
is a stack of slices: each frame's position in its item of ``PerFrameFunctionalGroupsSequence``,
and what the frames share (orientation, pixel spacing, rescale) usually in
``SharedFunctionalGroupsSequence``. Both become :class:`Frame` objects, so the series reader
does not care which kind of file a slice came from.

A tag that a slice needs and lacks is refused by name (``has no ImagePositionPatient
(0020,0032)``), never skipped: a silently dropped slice squashes the anatomy, and a CT read
without its intercept is about 1,024 HU too bright.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from .errors import DataFormatError

__all__ = [
    "Frame",
    "check_series_geometry",
    "file_errors",
    "is_volume_slice",
    "required_tag",
    "slice_frames",
    "sop_class",
    "tag_name",
    "tag_numbers",
]

# Cross-sectional images: a file of one of these classes is a slice (or, enhanced, a stack of
# slices) and must say where it lies; other DICOM files (RTSTRUCT, reports, dose screenshots
# saved as Secondary Capture) are not read as slices.
_VOLUME_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.4": "Legacy Converted Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.128": "Positron Emission Tomography Image Storage",
    "1.2.840.10008.5.1.4.1.1.128.1": "Legacy Converted Enhanced PET Image Storage",
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET Image Storage",
}


@contextmanager
def file_errors(path: Path, doing: str) -> Iterator[None]:
    """Re-raise any error met while ``doing`` something with ``path`` as a DataFormatError naming it.

    pydicom parses an element when it is first used, so a damaged value (a wrong VR, a cut
    sequence, text where numbers belong) raises KeyError, ValueError, TypeError... wherever
    the reader touches it; this keeps the file's name on all of them.
    """
    try:
        yield
    except DataFormatError:
        raise
    except Exception as error:
        raise DataFormatError(path, f"{doing}: a damaged DICOM file ({type(error).__name__}: {error})") from error


def tag_name(keyword: str) -> str:
    """``'ImagePositionPatient (0020,0032)'``: the keyword with its tag, as DICOM viewers show it."""
    tag = tag_for_keyword(keyword)
    return f"{keyword} {Tag(tag)}" if tag is not None else keyword


def sop_class(header: pydicom.Dataset) -> str:
    """The file's SOP class UID; from its file meta header when the dataset lacks it ('' if neither has one)."""
    meta = getattr(header, "file_meta", None) or pydicom.Dataset()
    return str(header.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID") or "")


@dataclass(frozen=True)
class Frame:
    """One slice of a series: a single-frame file, or one frame of an enhanced multi-frame file."""

    path: Path
    frame: int | None  # 0-based frame number in a multi-frame file; None for a one-slice file
    position: np.ndarray  # ImagePositionPatient, mm
    orientation: np.ndarray  # ImageOrientationPatient: row direction, then column direction
    pixel_spacing: np.ndarray  # PixelSpacing: between rows, between columns (mm)
    thickness: float | None  # SpacingBetweenSlices, else SliceThickness (used for a one-slice series)
    slope: float
    intercept: float
    sop_uid: str

    @property
    def label(self) -> str:
        """The file's name, and the frame's number (from 1, as DICOM counts) in a multi-frame file."""
        return self.path.name if self.frame is None else f"{self.path.name} (frame {self.frame + 1})"


def is_volume_slice(header: pydicom.Dataset) -> bool:
    """Whether a file is a CT / MR / PET image that a series volume is built from.

    By SOP class; files of other classes (or none) count when they carry the position and
    spacing of a slice, as :mod:`mmsurv.io.dicom` always took them.
    """
    uid = sop_class(header)
    if uid in _VOLUME_SOP_CLASSES:
        return True
    if not uid and header.get("Modality") in ("CT", "MR", "PT") and "Rows" in header:
        return True
    return "ImagePositionPatient" in header and "PixelSpacing" in header


def required_tag(path: Path, dataset: pydicom.Dataset, keyword: str, where: str = "") -> Any:
    """A tag's value, refused (naming the file and the tag) when it is absent or empty."""
    value = dataset.get(keyword)
    if value is None or (hasattr(value, "__len__") and len(value) == 0):
        raise DataFormatError(path, f"has no {tag_name(keyword)}{where}")
    return value


def tag_numbers(path: Path, value: Any, keyword: str, count: int | None, where: str = "") -> np.ndarray:
    """``count`` finite numbers (any number of them if None) from a tag's value, or a DataFormatError saying what it holds."""
    try:
        numbers = np.asarray(list(value) if isinstance(value, list | tuple | MultiValue) else [value], dtype=float).ravel()
    except (TypeError, ValueError):
        numbers = np.array([])
    if numbers.size == 0 or (count is not None and numbers.size != count) or not np.all(np.isfinite(numbers)):
        raise DataFormatError(path, f"its {tag_name(keyword)}{where} is {value!r:.80}, not {count or 'a list of'} number(s)")
    return numbers


def _rescale(path: Path, dataset: pydicom.Dataset, modality: str, where: str = "") -> tuple[float, float]:
    """``RescaleSlope`` and ``RescaleIntercept``: stored value * slope + intercept = HU (CT) or the modality's unit.

    A CT must carry both (they are required there): most scanners store HU + 1024 with an
    intercept of -1024, so reading a CT without its intercept as 0 would shift every voxel by
    about 1,024 HU without a word. Other modalities default to 1 and 0 (MR has no physical unit).
    """
    values = []
    for keyword, default in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
        if modality == "CT":
            value = required_tag(path, dataset, keyword, f"{where}: a CT's stored values are not HU without it")
            values.append(float(tag_numbers(path, value, keyword, 1, where)[0]))
        elif dataset.get(keyword) is None or dataset.get(keyword) == "":
            values.append(default)
        else:
            values.append(float(tag_numbers(path, dataset.get(keyword), keyword, 1, where)[0]))
    return values[0], values[1]


def _thickness(dataset: pydicom.Dataset) -> float | None:
    """The slice gap a lone slice stands for: ``SpacingBetweenSlices``, else ``SliceThickness`` (None if neither is usable).

    Only a one-slice series uses it, so a damaged value is ignored rather than refused.
    """
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            thickness = float(dataset.get(keyword))
        except (TypeError, ValueError):
            continue
        if np.isfinite(thickness) and thickness > 0:
            return thickness
    return None


def _single_frame(path: Path, header: pydicom.Dataset, modality: str) -> list[Frame]:
    """The one slice of a classic CT / MR / PET file."""
    spacing = tag_numbers(path, required_tag(path, header, "PixelSpacing"), "PixelSpacing", 2)
    slope, intercept = _rescale(path, header, modality)
    return [
        Frame(
            path=path,
            frame=None,
            position=tag_numbers(path, required_tag(path, header, "ImagePositionPatient"), "ImagePositionPatient", 3),
            orientation=tag_numbers(path, required_tag(path, header, "ImageOrientationPatient"), "ImageOrientationPatient", 6),
            pixel_spacing=spacing,
            thickness=_thickness(header),
            slope=slope,
            intercept=intercept,
            sop_uid=str(header.get("SOPInstanceUID", "")),
        )
    ]


def _functional_group(item: pydicom.Dataset, shared: pydicom.Dataset, sequence: str) -> pydicom.Dataset | None:
    """A functional group macro (e.g. ``PlanePositionSequence``) for one frame: its own, else the shared one."""
    for group in (item, shared):
        found = group.get(sequence)
        if found:
            return found[0]
    return None


def _enhanced_frames(path: Path, header: pydicom.Dataset, modality: str, n_frames: int) -> list[Frame]:
    """The slices of an enhanced multi-frame file, from its functional groups.

    Each frame's position is in its item of ``PerFrameFunctionalGroupsSequence``; orientation,
    pixel spacing and rescale are usually in ``SharedFunctionalGroupsSequence`` (or per frame).
    """
    per_frame = header.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        raise DataFormatError(
            path,
            f"a multi-frame image ({n_frames} frames) without {tag_name('PerFrameFunctionalGroupsSequence')}: where each frame lies "
            "is unknown, so it cannot be read as a volume (convert it to one file per slice, e.g. with dcm2niix or dcmtk's dcmmfsplit?)",
        )
    if len(per_frame) != n_frames:
        raise DataFormatError(
            path, f"a multi-frame image of {n_frames} frames (NumberOfFrames) with {len(per_frame)} PerFrameFunctionalGroupsSequence items"
        )
    shared_items = header.get("SharedFunctionalGroupsSequence")
    shared = shared_items[0] if shared_items else pydicom.Dataset()
    frames = []
    for k, item in enumerate(per_frame):
        at = f" (frame {k + 1})"
        missing = f" (multi-frame image, frame {k + 1}: neither its PerFrameFunctionalGroupsSequence item nor SharedFunctionalGroupsSequence has it)"

        def group(sequence: str, item: pydicom.Dataset = item, missing: str = missing) -> pydicom.Dataset:
            found = _functional_group(item, shared, sequence)
            if found is None:
                raise DataFormatError(path, f"has no {tag_name(sequence)}{missing}")
            return found

        measures = group("PixelMeasuresSequence")
        transform = _functional_group(item, shared, "PixelValueTransformationSequence")
        if transform is None and modality == "CT":
            raise DataFormatError(path, f"has no {tag_name('PixelValueTransformationSequence')}{missing}: a CT's stored values are not HU without it")
        slope, intercept = _rescale(path, transform if transform is not None else pydicom.Dataset(), modality, at)
        position = required_tag(path, group("PlanePositionSequence"), "ImagePositionPatient", missing)
        orientation = required_tag(path, group("PlaneOrientationSequence"), "ImageOrientationPatient", missing)
        frames.append(
            Frame(
                path=path,
                frame=k,
                position=tag_numbers(path, position, "ImagePositionPatient", 3, at),
                orientation=tag_numbers(path, orientation, "ImageOrientationPatient", 6, at),
                pixel_spacing=tag_numbers(path, required_tag(path, measures, "PixelSpacing", missing), "PixelSpacing", 2, at),
                thickness=_thickness(measures),
                slope=slope,
                intercept=intercept,
                sop_uid=str(header.get("SOPInstanceUID", "")),
            )
        )
    return frames


def slice_frames(path: Path, header: pydicom.Dataset) -> list[Frame]:
    """The slices a CT / MR / PET file holds, refused with the file's name and the missing tag."""
    with file_errors(path, "reading its slice geometry"):
        # a CT by its SOP class too, so that a CT file without Modality is still held to its rescale
        modality = "CT" if "CT Image" in _VOLUME_SOP_CLASSES.get(sop_class(header), "") else str(header.get("Modality", "")).upper()
        tag_numbers(path, required_tag(path, header, "Rows"), "Rows", 1)
        tag_numbers(path, required_tag(path, header, "Columns"), "Columns", 1)
        n_frames = int(tag_numbers(path, header.get("NumberOfFrames") or 1, "NumberOfFrames", 1)[0])
        if n_frames > 1 or "PerFrameFunctionalGroupsSequence" in header:
            return _enhanced_frames(path, header, modality, n_frames)
        return _single_frame(path, header, modality)


def check_series_geometry(slices: list[Frame], rows: dict[Path, tuple[int, int]]) -> None:
    """One orientation, one pixel spacing and one image size for the whole series."""
    first = slices[0]
    for frame in slices:
        if not np.allclose(frame.orientation, first.orientation, atol=1e-4):
            raise DataFormatError(frame.path, f"its ImageOrientationPatient{_frame_words(frame)} differs from the rest of the series ({first.label})")
        if not np.allclose(frame.pixel_spacing, first.pixel_spacing, rtol=1e-4):
            raise DataFormatError(
                frame.path,
                f"its PixelSpacing{_frame_words(frame)} {list(frame.pixel_spacing)} differs from {first.label}'s {list(first.pixel_spacing)}",
            )
        if rows[frame.path] != rows[first.path]:
            raise DataFormatError(
                frame.path, f"is {rows[frame.path][0]}x{rows[frame.path][1]} px, the series is {rows[first.path][0]}x{rows[first.path][1]}"
            )
    if np.any(first.pixel_spacing <= 0):
        raise DataFormatError(first.path, f"its PixelSpacing {list(first.pixel_spacing)} is not positive")
    row_direction, column_direction = first.orientation[:3], first.orientation[3:]
    if not np.isclose(np.linalg.norm(np.cross(row_direction, column_direction)), 1.0, atol=1e-3):
        raise DataFormatError(first.path, f"its ImageOrientationPatient {list(first.orientation)} is not two perpendicular unit vectors")


def _frame_words(frame: Frame) -> str:
    return "" if frame.frame is None else f" (frame {frame.frame + 1})"
