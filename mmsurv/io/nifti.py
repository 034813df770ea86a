"""NIfTI images and masks (``.nii`` / ``.nii.gz``), as MRI and segmentation tools write them.

NIfTI stores an affine from voxel indices ``(i, j, k)`` to world millimetres in RAS+ (x toward the
patient's Right, y Anterior, z Superior), while DICOM uses LPS
(Left, Posterior, Superior). To keep one convention in the kit, volumes are converted to the
LPS frame of :class:`~mmsurv.io.volumes.Volume` on reading and back on writing:
``LPS = diag(-1, -1, 1) @ RAS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from ..atomic import atomic_path
from .errors import DataFormatError
from .volumes import Volume

__all__ = ["read_nifti", "write_nifti"]

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def read_nifti(path: str | os.PathLike) -> Volume:
    """Read a 3D NIfTI image or mask into a :class:`Volume` (array order slice, row, column).

    Raises
    ------
    DataFormatError
        Missing, unreadable or truncated file, not 3D, or an affine that gives no geometry
        (non-finite or singular: a zero voxel size).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "no such NIfTI file")
    try:
        image = nib.load(path)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel and gzip raise many types for damaged files
        raise DataFormatError(path, f"not a readable NIfTI file ({type(error).__name__}: {error})") from error
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataFormatError(path, f"expected a 3D image, got shape {data.shape}")
    _check_affine(path, image.affine)
    affine = _RAS_TO_LPS @ image.affine[:3, :3]
    origin = _RAS_TO_LPS @ image.affine[:3, 3]
    spacing_ijk = np.linalg.norm(affine, axis=0)
    directions = affine / spacing_ijk
    # nibabel indexes (i, j, k); the kit's arrays are (k, j, i): slice, row, column
    return Volume(
        array=np.ascontiguousarray(np.transpose(data, (2, 1, 0))),
        spacing=tuple(spacing_ijk[::-1]),
        origin=origin,
        axes=directions[:, ::-1],
        metadata={"file": str(path)},
    )


def _check_affine(path: Path, affine: np.ndarray) -> None:
    """Refuse a voxel-to-world affine that gives no geometry: non-finite entries or a singular matrix.

    nibabel reads such headers without complaint (a zeroed ``srow_*`` with ``sform_code`` set,
    a NaN written by a broken converter); the kit would then build volumes with zero or NaN
    voxel spacing, and every resampling and millimetre measure after it would be wrong.
    """
    linear = np.asarray(affine, dtype=float)[:3]
    if not np.isfinite(linear).all():
        raise DataFormatError(path, f"its voxel-to-world affine (sform / qform) has non-finite entries:\n{np.asarray(affine)}")
    if abs(np.linalg.det(linear[:, :3])) < 1e-12:
        raise DataFormatError(path, f"its voxel-to-world affine (sform / qform) is singular (a zero voxel size?):\n{np.asarray(affine)}")


def write_nifti(path: str | os.PathLike, volume: Volume) -> Path:
    """Write a :class:`Volume` as NIfTI (gzip-compressed when the name ends in ``.gz``), atomically."""
    path = Path(path)
    affine = np.eye(4)
    affine[:3, :3] = _RAS_TO_LPS @ (volume.axes[:, ::-1] * np.asarray(volume.spacing)[::-1])
    affine[:3, 3] = _RAS_TO_LPS @ volume.origin
    image = nib.Nifti1Image(np.transpose(volume.array, (2, 1, 0)), affine)
    image.header.set_xyzt_units("mm")
    suffix = ".nii.gz" if path.name.endswith(".gz") else ".nii"
    with atomic_path(path) as partial:
        target = partial.with_name(partial.name + suffix)  # nibabel picks compression from the name
        nib.save(image, target)
        os.replace(target, partial)
    return path
