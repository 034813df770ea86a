"""The voxel grid of a virtual scan (CT or MRI): axial slices centred on the isocentre."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ScanGeometry"]


@dataclass(frozen=True)
class ScanGeometry:
    """``rows`` x ``rows`` pixels of ``pixel_mm`` in each axial slice, ``slices`` slices ``slice_mm`` apart.

    Examples: a smoke-size chest CT ``ScanGeometry(96, 3.5, 36, 4.0)``; a pelvic MRI with thick
    slices, as clinical T2 sequences have, ``ScanGeometry(64, 3.0, 16, 5.0)``.
    """

    rows: int
    pixel_mm: float
    slices: int
    slice_mm: float

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(slice, row, column) spacing in mm, the order of :class:`mmsurv.io.volumes.Volume`."""
        return (self.slice_mm, self.pixel_mm, self.pixel_mm)

    @property
    def origin(self) -> np.ndarray:
        """Patient-space mm (x, y, z) of the first voxel: the grid is centred on the isocentre."""
        half = (self.rows - 1) * self.pixel_mm / 2
        return np.array([-half, -half, -(self.slices - 1) * self.slice_mm / 2])
