"""3D images in patient space, and the preprocessing that radiology pipelines share.

A :class:`Volume` is a voxel array plus where it sits in the patient: ``array[k, i, j]``
(slice, row, column) lies at ``origin + axes @ ([k, i, j] * spacing)`` millimetres in the
DICOM patient coordinate system (LPS: x to the patient's left, y to the back, z to the head).
NIfTI files, which use RAS, are converted on reading, so masks from either format line up.

Preprocessing functions return new volumes and never modify their input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "Volume",
    "resample_to_spacing",
    "mask_centroid_mm",
    "crop_cube",
    "window_hu",
    "scale_hu",
    "body_mask",
    "normalise_mri",
]


@dataclass
class Volume:
    """A 3D image with its geometry.

    Attributes
    ----------
    array : ndarray, shape (slices, rows, columns)
    spacing : tuple of float
        Millimetres between voxel centres along (slices, rows, columns).
    origin : ndarray, shape (3,)
        Patient-space position (mm, LPS) of voxel ``[0, 0, 0]``.
    axes : ndarray, shape (3, 3)
        Unit direction of each array axis in patient space, one per column
        (slice normal, column direction of DICOM, row direction of DICOM).
    metadata : dict
        What the reader knew: patient id, modality, series UID, file names...
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    axes: np.ndarray = field(default_factory=lambda: np.eye(3)[:, ::-1].copy())
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"a Volume needs a 3D array, got shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        if any(s <= 0 for s in self.spacing):
            raise ValueError(f"voxel spacing must be positive, got {self.spacing}")
        self.origin = np.asarray(self.origin, dtype=float)
        self.axes = np.asarray(self.axes, dtype=float)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    def index_to_mm(self, index: np.ndarray) -> np.ndarray:
        """Patient-space mm of (fractional) voxel indices, shape (..., 3) -> (..., 3)."""
        index = np.asarray(index, dtype=float)
        return self.origin + (index * np.asarray(self.spacing)) @ self.axes.T

    def mm_to_index(self, points_mm: np.ndarray) -> np.ndarray:
        """Fractional voxel indices (k, i, j) of patient-space points, shape (..., 3) -> (..., 3)."""
        points_mm = np.asarray(points_mm, dtype=float)
        return np.linalg.solve(self.axes, (points_mm - self.origin).T).T / np.asarray(self.spacing)

    def with_array(self, array: np.ndarray, **changes: Any) -> Volume:
        """A copy with a new array (and optionally new spacing / origin), same metadata."""
        return replace(self, **{"array": array, "metadata": dict(self.metadata), **changes})


def resample_to_spacing(volume: Volume, spacing_mm: float | tuple[float, float, float] = 1.0, *, order: int = 1) -> Volume:
    """Resample to a new voxel spacing, keeping the first voxel's centre in place.

    Parameters
    ----------
    volume : Volume
    spacing_mm : float or (3,) tuple, default 1.0
        A single number gives isotropic voxels.
    order : int, default 1
        Interpolation order: 1 (linear) for images, 0 (nearest) for masks and labels.

    Returns
    -------
    Volume
    """
    new = np.broadcast_to(np.asarray(spacing_mm, dtype=float), (3,))
    old = np.asarray(volume.spacing)
    extent = (np.asarray(volume.shape) - 1) * old
    shape = np.floor(extent / new + 1e-6).astype(int) + 1
    grids = [np.arange(n) * s / o for n, s, o in zip(shape, new, old)]
    coordinates = np.meshgrid(*grids, indexing="ij")
    source = volume.array.astype(np.float32) if order > 0 else volume.array
    array = ndimage.map_coordinates(source, coordinates, order=order, mode="nearest")
    return volume.with_array(array.astype(volume.array.dtype if order == 0 else np.float32), spacing=tuple(new))


def mask_centroid_mm(mask: Volume) -> np.ndarray:
    """Patient-space centre of mass (mm) of a binary mask."""
    if not np.any(mask.array):
        raise ValueError(f"the mask {mask.metadata.get('roi', '')!s} is empty: no centroid")
    return mask.index_to_mm(np.array(ndimage.center_of_mass(mask.array > 0)))


def crop_cube(volume: Volume, centre_mm: np.ndarray, size_mm: float, *, fill: float | None = None) -> Volume:
    """A cube of side ``size_mm`` centred on a patient-space point, padded where it leaves the image.

    Use on an isotropic volume (see :func:`resample_to_spacing`): the cube has
    ``round(size_mm / spacing)`` voxels per side.

    Parameters
    ----------
    volume : Volume
    centre_mm : (3,) array
        E.g. :func:`mask_centroid_mm` of the tumour mask.
    size_mm : float
        50 mm in Hosny et al. (2018).
    fill : float, optional
        Value outside the image; default the volume's minimum (air, -1024 HU for CT).

    Returns
    -------
    Volume
    """
    spacing = np.asarray(volume.spacing)
    if not np.allclose(spacing, spacing[0], rtol=1e-3):
        raise ValueError(f"crop_cube needs isotropic voxels, got spacing {tuple(spacing)}; resample first")
    side = int(round(size_mm / spacing[0]))
    centre = np.round(volume.mm_to_index(centre_mm)).astype(int)
    start = centre - side // 2
    fill = float(volume.array.min()) if fill is None else fill
    cube = np.full((side,) * 3, fill, dtype=volume.array.dtype)
    source = [slice(max(0, s), min(n, s + side)) for s, n in zip(start, volume.shape)]
    target = [slice(src.start - s, src.stop - s) for src, s in zip(source, start)]
    if all(src.stop > src.start for src in source):
        cube[tuple(target)] = volume.array[tuple(source)]
    return volume.with_array(cube, origin=volume.index_to_mm(start))


def window_hu(hu: np.ndarray, level: float = -600.0, width: float = 1500.0) -> np.ndarray:
    """Map a Hounsfield window to [0, 1] (default: a lung window, L -600 / W 1500)."""
    low = level - width / 2
    return np.clip((np.asarray(hu, dtype=np.float32) - low) / width, 0.0, 1.0)


def scale_hu(hu: np.ndarray) -> np.ndarray:
    """(HU + 1024) / 4095, clipped to [0, 1]: the intensity scaling of Hosny et al.'s released code."""
    return np.clip((np.asarray(hu, dtype=np.float32) + 1024.0) / 4095.0, 0.0, 1.0)


def body_mask(array: np.ndarray) -> np.ndarray:
    """The patient's body in an MRI volume: Otsu threshold, largest component, holes filled per slice.

    The threshold is found on log intensities: a bright lesion (e.g. on diffusion-weighted
    images) would otherwise pull a plain Otsu threshold above the rest of the body.
    """
    from skimage.filters import threshold_otsu

    values = np.log1p(np.maximum(np.asarray(array, dtype=np.float32), 0.0))
    mask = values > threshold_otsu(values)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
        mask = labels == 1 + int(np.argmax(sizes))
    return np.stack([ndimage.binary_fill_holes(s) for s in mask])


def normalise_mri(
    volume: Volume,
    mask: np.ndarray | None = None,
    *,
    method: str = "zscore",
    percentiles: tuple[float, float] = (0.5, 99.5),
) -> Volume:
    """Put an MRI volume on a common intensity scale using the voxels inside the body.

    MRI intensities have no physical unit and differ between scanners and centres; scaling by
    statistics of the body makes patients from different centres comparable.

    Parameters
    ----------
    volume : Volume
    mask : boolean array, optional
        Default :func:`body_mask` of the volume (for a diffusion image, pass the body mask of
        the T2-weighted image of the same patient).
    method : {"zscore", "robust", "ratio"}, default "zscore"
        ``"zscore"``: subtract the mean, divide by the standard deviation. ``"robust"``:
        subtract the median, divide by the interquartile range - the body's normal tissue
        sets the scale, so a large bright lesion does not shrink its own contrast.
        ``"ratio"``: divide by the median and subtract 1 (signal relative to the body's
        typical tissue) - for an image whose body is nearly uniform, such as a diffusion-weighted
        one, where the spread measures the scanner's noise more than the anatomy, and dividing
        by it would make noisier scanners look darker.
    percentiles : (low, high), default (0.5, 99.5)
        Voxels outside these percentiles are left out of the statistics (not clipped).

    Returns
    -------
    Volume
        float32; voxels outside the mask are 0.
    """
    values = volume.array.astype(np.float32)
    mask = body_mask(values) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != values.shape or not mask.any():
        raise ValueError(f"the body mask must be a non-empty array of shape {values.shape}")
    inside = values[mask]
    low, high = np.percentile(inside, percentiles)
    typical = inside[(inside >= low) & (inside <= high)]
    if method == "zscore":
        centre, scale = float(typical.mean()), float(typical.std())
    elif method == "robust":
        q1, centre, q3 = (float(q) for q in np.percentile(typical, [25, 50, 75]))
        scale = q3 - q1
    elif method == "ratio":
        centre = float(np.median(typical))
        scale = abs(centre)
    else:
        raise ValueError(f"method must be 'zscore', 'robust' or 'ratio', got {method!r}")
    normalised = (values - centre) / max(scale, 1e-6)
    return volume.with_array(np.where(mask, normalised, 0.0).astype(np.float32))
