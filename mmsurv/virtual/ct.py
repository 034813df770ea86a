"""Virtual chest CT: a phantom with a lung tumour, written as a DICOM series + RTSTRUCT.

The phantom is deliberately simple - a body, two lungs, a tumour - but the tumour carries the
patient's planted biology the way radiomics studies found it in real scans:

* **size** grows with ``invasion`` (which also drives the clinical T stage),
* **texture** (internal heterogeneity) and a dark, cavitating **necrotic core** (about 400 HU
  below viable tumour, as partly air-filled cavities are) grow with ``proliferation``, which no
  clinical variable records - the image signal a CNN can add beyond the tumour's size and the
  clinical baseline; it is planted strongly enough that the narrow CNN learns it from the smoke
  cohort's ~170 training patients (a fainter 70 HU core was not learned there, and the CNN then
  did no better than the tumour's volume),
* **margin** irregularity (lobulation / spiculation) grows with ``invasion``.

Geometry and randomness are tied to the patient, noise to the scan, so a *rescan* of the
same patient (test-retest) shows the same tumour through different noise and positioning,
and a *second reader* draws a slightly different contour around the same tumour.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from ..atomic import atomic_path
from .geometry import ScanGeometry

__all__ = ["TumourShape", "tumour_shape", "render_ct", "reader_mask", "dicom_uid", "write_ct_series", "write_rtstruct", "mask_contours"]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass(frozen=True)
class TumourShape:
    """A lobulated tumour: centre (mm), radius (mm), margin lobes, texture strength and necrotic core.

    ``necrosis`` is the radius of the necrotic core as a fraction of the tumour's.
    """

    centre_mm: tuple[float, float, float]
    radius_mm: float
    lobe_directions: np.ndarray
    lobe_strength: float
    heterogeneity_hu: float
    necrosis: float
    seed: int


def tumour_shape(proliferation: float, invasion: float, *, seed: int, geometry: ScanGeometry) -> TumourShape:
    """Draw a patient's tumour from the latent traits (same seed, same tumour)."""
    rng = np.random.default_rng(seed)
    side = rng.choice([-1.0, 1.0])
    half_fov = geometry.rows * geometry.pixel_mm / 2
    centre = (
        side * half_fov * rng.uniform(0.28, 0.40),
        half_fov * rng.uniform(-0.12, 0.12),
        geometry.slices * geometry.slice_mm * rng.uniform(-0.12, 0.12),
    )
    directions = rng.standard_normal((6, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return TumourShape(
        centre_mm=tuple(float(c) for c in centre),
        radius_mm=float(np.clip(15.0 + 5.5 * invasion + rng.normal(0, 1.5), 6.0, 30.0)),
        lobe_directions=directions,
        lobe_strength=float(np.clip(0.12 + 0.12 * invasion, 0.0, 0.45)),
        heterogeneity_hu=float(np.clip(45.0 + 40.0 * proliferation, 5.0, 160.0)),
        necrosis=float(np.clip(0.3 + 0.3 * proliferation, 0.0, 0.85)),
        seed=int(seed),
    )


def _patient_grid(geometry: ScanGeometry, offset_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, z (mm, anatomy frame) of every voxel, shape (slices, rows, rows) each."""
    z = geometry.origin[2] + np.arange(geometry.slices) * geometry.slice_mm - offset_mm[2]
    y = geometry.origin[1] + np.arange(geometry.rows) * geometry.pixel_mm - offset_mm[1]
    x = geometry.origin[0] + np.arange(geometry.rows) * geometry.pixel_mm - offset_mm[0]
    return np.meshgrid(z, y, x, indexing="ij")[::-1]


def _tumour_distance(tumour: TumourShape, x: np.ndarray, y: np.ndarray, z: np.ndarray, radius_scale: float = 1.0) -> np.ndarray:
    """Signed distance-like field: < 1 inside the (lobulated) tumour.

    Computed only in a box around the tumour that holds every voxel with a value below 2 (the
    lobes can push the boundary out to ``1 + lobe_strength x number of lobes`` radii); outside
    it the field is ``inf``, which every caller reads as "far outside", as it would a value
    >= 2. ``x``, ``y``, ``z`` are the grids of :func:`_patient_grid`: z varies along axis 0,
    y along axis 1, x along axis 2.
    """
    reach = 2.0 * tumour.radius_mm * radius_scale * (1.0 + abs(tumour.lobe_strength) * len(tumour.lobe_directions))
    box = tuple(
        slice(int(np.searchsorted(axis, centre - reach)), int(np.searchsorted(axis, centre + reach, side="right")))
        for axis, centre in ((z[:, 0, 0], tumour.centre_mm[2]), (y[0, :, 0], tumour.centre_mm[1]), (x[0, 0, :], tumour.centre_mm[0]))
    )
    distance = np.full(x.shape, np.inf)
    x, y, z = x[box], y[box], z[box]
    d = np.stack([x - tumour.centre_mm[0], y - tumour.centre_mm[1], z - tumour.centre_mm[2]], axis=-1)
    r = np.linalg.norm(d, axis=-1)
    unit = d / np.maximum(r, 1e-6)[..., None]
    lobes = np.maximum(unit @ tumour.lobe_directions.T, 0.0) ** 4
    boundary = tumour.radius_mm * radius_scale * (1.0 + tumour.lobe_strength * lobes.sum(axis=-1))
    distance[box] = r / boundary
    return distance


def render_ct(
    tumour: TumourShape,
    geometry: ScanGeometry,
    *,
    scan_seed: int,
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    noise_hu: float = 18.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one scan.

    Parameters
    ----------
    tumour : TumourShape
    geometry : ScanGeometry
    scan_seed : int
        Seeds the noise of this acquisition (a rescan uses another).
    offset_mm : (3,) tuple
        Where the patient lies relative to the scanner (repositioning between scans).
    noise_hu : float, default 18

    Returns
    -------
    hu : int16 array, shape (slices, rows, rows)
    tumour_mask : bool array, same shape (the true tumour, before any reader draws it)
    """
    x, y, z = _patient_grid(geometry, np.asarray(offset_mm, dtype=float))
    half = geometry.rows * geometry.pixel_mm / 2
    hu = np.full(x.shape, -1000.0, dtype=np.float32)
    body = (x / (0.92 * half)) ** 2 + (y / (0.66 * half)) ** 2 < 1
    hu[body] = 35.0
    for side in (-1, 1):
        lung = ((x - side * 0.42 * half) / (0.33 * half)) ** 2 + (y / (0.48 * half)) ** 2 + (z / (1.3 * half)) ** 2 < 1
        hu[lung] = -840.0
    distance = _tumour_distance(tumour, x, y, z)
    inside = distance < 1.0
    texture_rng = np.random.default_rng(tumour.seed + 1)  # the tumour's texture belongs to the patient
    texture = ndimage.gaussian_filter(texture_rng.standard_normal(x.shape).astype(np.float32), sigma=1.2)
    texture /= max(float(texture.std()), 1e-6)
    edge = np.clip((1.0 - distance) / 0.12, 0.0, 1.0)  # partial-volume rim
    core = np.clip((tumour.necrosis - distance) / 0.1, 0.0, 1.0)  # necrosis / cavitation: about 400 HU below viable tumour
    tumour_hu = 30.0 + tumour.heterogeneity_hu * texture - 400.0 * core
    hu = hu * (1 - edge) + tumour_hu * edge
    noise = np.random.default_rng(scan_seed).normal(0.0, noise_hu, size=x.shape)
    hu = np.clip(hu + noise, -1024, 3071)
    return np.round(hu).astype(np.int16), inside


def reader_mask(tumour: TumourShape, geometry: ScanGeometry, *, reader_seed: int, offset_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A contour as a given reader would draw it: a little larger or smaller, boundary jittered."""
    rng = np.random.default_rng(reader_seed)
    x, y, z = _patient_grid(geometry, np.asarray(offset_mm, dtype=float))
    distance = _tumour_distance(tumour, x, y, z, radius_scale=float(rng.normal(1.0, 0.07)))
    wobble = ndimage.gaussian_filter(rng.standard_normal(x.shape), sigma=2.0)
    return distance + 0.6 * wobble < 1.0


def dicom_uid(*parts: object) -> str:
    """A reproducible DICOM UID from the given parts (same parts, same UID)."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _base_dataset(path_name: str, sop_class: str, sop_uid: str, patient: dict[str, str]) -> pydicom.FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.FileDataset(path_name, {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = sop_uid
    dataset.PatientID = patient["patient_id"]
    dataset.PatientName = patient["patient_id"]
    dataset.PatientSex = patient.get("sex", "O")
    dataset.StudyInstanceUID = patient["study_uid"]
    dataset.StudyDate = patient.get("study_date", "20080101")
    dataset.FrameOfReferenceUID = patient["frame_uid"]
    return dataset


def write_ct_series(
    folder: str | os.PathLike,
    hu: np.ndarray,
    geometry: ScanGeometry,
    patient: dict[str, str],
    *,
    series_uid: str,
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> list[str]:
    """Write a CT volume (HU) as one DICOM file per axial slice; returns the SOP instance UIDs.

    ``patient`` holds ``patient_id``, ``study_uid`` and ``frame_uid`` (and optionally ``sex``,
    ``study_date``). Stored values are HU + 1024 with ``RescaleIntercept`` -1024, as most
    scanners write them. Slices are written in a shuffled order of file names, so readers
    must sort by position, as they must with real exports.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sop_uids = [dicom_uid(series_uid, k) for k in range(hu.shape[0])]
    file_numbers = np.random.default_rng(int(hashlib.sha256(series_uid.encode()).hexdigest()[:8], 16)).permutation(hu.shape[0]) + 1
    # one dataset for the series: per slice, only its instance UID, number, position and pixels change
    dataset = _base_dataset("", CT_IMAGE_STORAGE, sop_uids[0], patient)
    dataset.Modality = "CT"
    dataset.SeriesInstanceUID = series_uid
    dataset.SeriesNumber = 1
    dataset.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    dataset.PixelSpacing = [geometry.pixel_mm, geometry.pixel_mm]
    dataset.SliceThickness = geometry.slice_mm
    dataset.Rows, dataset.Columns = hu.shape[1], hu.shape[2]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
    dataset.PixelRepresentation = 0
    dataset.RescaleIntercept, dataset.RescaleSlope = -1024, 1
    dataset.RescaleType = "HU"
    dataset.KVP = 120
    # one dataset for the whole series: per slice, only its instance UID, number, position and pixels change
    for k in range(hu.shape[0]):
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID = sop_uids[k]
        dataset.InstanceNumber = k + 1
        dataset.ImagePositionPatient = [float(v) for v in geometry.origin + np.array([0.0, 0.0, k * geometry.slice_mm])]
        dataset.PixelData = (hu[k].astype(np.int32) + 1024).astype(np.uint16).tobytes()
        with atomic_path(folder / f"1-{file_numbers[k]:03d}.dcm") as partial:
            dataset.save_as(partial, enforce_file_format=True)
    return sop_uids


def mask_contours(mask: np.ndarray, geometry: ScanGeometry) -> list[tuple[int, np.ndarray]]:
    """Closed polygons (slice index, (n, 3) patient mm) around a boolean mask, slice by slice."""
    from skimage.measure import find_contours

    polygons = []
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        padded = np.pad(mask[k].astype(np.float32), 1)
        for contour in find_contours(padded, 0.5):
            rows, cols = contour[:-1, 0] - 1, contour[:-1, 1] - 1  # drop the repeated closing point
            if len(rows) < 3:
                continue
            xyz = np.column_stack(
                [
                    geometry.origin[0] + cols * geometry.pixel_mm,
                    geometry.origin[1] + rows * geometry.pixel_mm,
                    np.full(len(rows), geometry.origin[2] + k * geometry.slice_mm),
                ]
            )
            polygons.append((int(k), xyz))
    return polygons


def write_rtstruct(
    path: str | os.PathLike,
    rois: dict[str, np.ndarray],
    geometry: ScanGeometry,
    patient: dict[str, str],
    *,
    ct_series_uid: str,
    ct_sop_uids: list[str],
    label: str = "RTSTRUCT",
) -> Path:
    """Write masks as an RTSTRUCT referencing a CT series (ROI name -> boolean mask)."""
    path = Path(path)
    sop_uid = dicom_uid(ct_series_uid, label, "rtstruct")
    dataset = _base_dataset(path.name, RTSTRUCT_STORAGE, sop_uid, patient)
    dataset.Modality = "RTSTRUCT"
    dataset.SeriesInstanceUID = dicom_uid(ct_series_uid, label, "series")
    dataset.SeriesNumber = 2
    dataset.StructureSetLabel = label
    dataset.StructureSetDate = _dt.date(2008, 1, 1).strftime("%Y%m%d")
    frame = pydicom.Dataset()
    frame.FrameOfReferenceUID = patient["frame_uid"]
    study = pydicom.Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = patient["study_uid"]
    series = pydicom.Dataset()
    series.SeriesInstanceUID = ct_series_uid
    series.ContourImageSequence = [_image_reference(uid) for uid in ct_sop_uids]
    study.RTReferencedSeriesSequence = [series]
    frame.RTReferencedStudySequence = [study]
    dataset.ReferencedFrameOfReferenceSequence = [frame]
    structure_set, roi_contours, observations = [], [], []
    for number, (name, mask) in enumerate(rois.items(), start=1):
        roi = pydicom.Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, patient["frame_uid"]
        roi.ROIGenerationAlgorithm = "MANUAL"
        structure_set.append(roi)
        contour_item = pydicom.Dataset()
        contour_item.ReferencedROINumber = number
        contour_item.ROIDisplayColor = [255, 0, 0]
        contours = []
        for k, xyz in mask_contours(mask, geometry):
            contour = pydicom.Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(xyz)
            contour.ContourData = [round(float(v), 3) for v in xyz.ravel()]
            contour.ContourImageSequence = [_image_reference(ct_sop_uids[k])]
            contours.append(contour)
        contour_item.ContourSequence = contours
        roi_contours.append(contour_item)
        observation = pydicom.Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.RTROIInterpretedType, observation.ROIInterpreter = "GTV", ""
        observations.append(observation)
    dataset.StructureSetROISequence = structure_set
    dataset.ROIContourSequence = roi_contours
    dataset.RTROIObservationsSequence = observations
    with atomic_path(path) as partial:
        dataset.save_as(partial, enforce_file_format=True)
    return path


def _image_reference(sop_uid: str) -> pydicom.Dataset:
    reference = pydicom.Dataset()
    reference.ReferencedSOPClassUID = CT_IMAGE_STORAGE
    reference.ReferencedSOPInstanceUID = sop_uid
    return reference
