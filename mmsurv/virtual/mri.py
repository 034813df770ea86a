"""Virtual pelvic MRI: a cervical tumour seen on a T2-weighted and a diffusion-weighted sequence.

Written as NIfTI (image + tumour mask per sequence), the format MRI studies are usually
shared in after conversion from DICOM. Planted biology:

* tumour **size** grows with ``invasion`` (and so with FIGO stage),
* **diffusion restriction** (brightness on the diffusion-like image) grows with
  ``proliferation`` - densely packed, dividing cells restrict water diffusion,
* **T2 heterogeneity** grows with ``proliferation`` too, more weakly.

Each centre's scanner has its own intensity gain and a smooth bias field, so intensities are
only comparable after normalisation inside the body (:func:`mmsurv.io.volumes.normalise_mri`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .geometry import ScanGeometry

__all__ = ["PelvicTumour", "pelvic_tumour", "render_mri"]


@dataclass(frozen=True)
class PelvicTumour:
    """A cervical tumour: centre and semi-axes (mm), diffusion restriction, heterogeneity, invasion flags."""

    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    restriction: float
    heterogeneity: float
    parametrial_invasion: bool
    nodes: int
    seed: int

    @property
    def max_diameter_mm(self) -> float:
        return 2 * max(self.semi_axes_mm)


def pelvic_tumour(proliferation: float, invasion: float, *, seed: int) -> PelvicTumour:
    """Draw a patient's tumour from the latent traits (same seed, same tumour)."""
    rng = np.random.default_rng(seed)
    size = float(np.clip(16.0 + 6.0 * invasion + rng.normal(0, 2.0), 5.0, 40.0))
    axes = tuple(float(size * f) for f in rng.uniform(0.75, 1.15, size=3))
    return PelvicTumour(
        centre_mm=(float(rng.normal(0, 4)), float(rng.normal(8, 4)), float(rng.normal(0, 5))),
        semi_axes_mm=axes,
        restriction=float(np.clip(1.0 + 0.35 * proliferation + rng.normal(0, 0.1), 0.3, 2.2)),
        heterogeneity=float(np.clip(0.15 + 0.07 * proliferation, 0.03, 0.35)),
        parametrial_invasion=bool(invasion + rng.normal(0, 0.5) > 0.6),
        nodes=int(np.clip(np.round(np.maximum(invasion + rng.normal(0, 0.7), 0) * 1.5), 0, 6)),
        seed=int(seed),
    )


def render_mri(
    tumour: PelvicTumour,
    geometry: ScanGeometry,
    *,
    scan_seed: int,
    scanner_gain: float = 1.0,
    noise: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the T2-weighted-like and diffusion-like volumes and the tumour mask.

    ``scanner_gain`` scales the signal and ``noise`` the scanner's noise level.

    Returns
    -------
    t2, dwi : float32 arrays, shape (slices, rows, rows)
    mask : uint8 array, same shape
    """
    rng = np.random.default_rng(scan_seed)
    z = geometry.origin[2] + np.arange(geometry.slices) * geometry.slice_mm
    y = geometry.origin[1] + np.arange(geometry.rows) * geometry.pixel_mm
    x = geometry.origin[0] + np.arange(geometry.rows) * geometry.pixel_mm
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    half = geometry.rows * geometry.pixel_mm / 2
    body_r = (xx / (0.92 * half)) ** 2 + (yy / (0.7 * half)) ** 2
    body = body_r < 1
    fat = body & (body_r > 0.7)
    uterus = ((xx / 28) ** 2 + ((yy - 8) / 22) ** 2 + (zz / 45) ** 2) < 1
    bladder = ((xx / 30) ** 2 + ((yy + 28) / 16) ** 2 + ((zz - 10) / 30) ** 2) < 1
    tumour_r = sum(((c - m) / a) ** 2 for c, m, a in zip((xx, yy, zz), tumour.centre_mm, tumour.semi_axes_mm))
    inside = tumour_r < 1

    patient_rng = np.random.default_rng(tumour.seed + 7)
    texture = ndimage.gaussian_filter(patient_rng.standard_normal(xx.shape), sigma=1.0)
    texture /= max(float(texture.std()), 1e-6)
    t2 = np.where(body, 0.45, 0.0) + 0.35 * fat + 0.15 * uterus + 0.8 * bladder
    t2 = np.where(inside, 0.75 * (1 + tumour.heterogeneity * texture), t2)
    dwi = np.where(body, 0.20, 0.0) + 0.05 * uterus
    dwi = np.where(inside, 0.25 + 0.35 * tumour.restriction * (1 + 0.5 * tumour.heterogeneity * texture), dwi)
    bias = 1.0 + 0.15 * (xx / half) + 0.1 * (yy / half)  # a smooth coil-sensitivity field
    t2 = 600 * scanner_gain * bias * t2 + rng.normal(0, 12 * noise, xx.shape)
    dwi = 300 * scanner_gain * bias * dwi + rng.normal(0, 10 * noise, xx.shape)
    return np.abs(t2).astype(np.float32), np.abs(dwi).astype(np.float32), inside.astype(np.uint8)
