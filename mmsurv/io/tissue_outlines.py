"""Tissue outlines as polygons in slide pixels, written as GeoJSON that QuPath opens.

A :class:`~mmsurv.io.slides.TissueMask` says which thumbnail pixels are tissue. Its outline, as
polygons in level-0 (full-resolution) pixel coordinates - x to the right, y down, the origin
at the top-left corner of the slide, as QuPath and OpenSlide count - lets a pathologist check
what was tiled: drag the ``.geojson`` file onto the slide open in QuPath (or use
File > Import objects) and the outlines appear as annotations of class "Tissue".

How a mask becomes polygons
---------------------------
Marching squares (:func:`skimage.measure.find_contours` at level 0.5) traces the border between
tissue and background through the midpoints between pixel centres. The mask is zero-padded
first, so a piece of tissue touching the border of the thumbnail still gets a closed ring.
``find_contours`` returns (row, col) positions where pixel centres are integers; in pixel-edge
coordinates, where mask pixel ``c`` spans ``[c, c + 1)``, a position is ``index + 0.5`` - minus
the one pixel of padding, so ``index - 0.5``. The rings are then simplified lightly
(Douglas-Peucker, :func:`skimage.measure.approximate_polygon`) and scaled to level 0 by
``level0_width / mask_width`` and ``level0_height / mask_height``.

Marching squares cuts every corner of the pixel staircase by half a pixel, so a polygon's area
is the mask's area less 1/8 mask pixel per corner: within a few percent for any piece of
tissue larger than a few mask pixels.

References
----------
Lorensen W.E., Cline H.E., "Marching cubes: a high resolution 3D surface construction
algorithm", SIGGRAPH 1987 (its 2-D case, marching squares).
Butler H. et al., "The GeoJSON Format", RFC 7946 (2016).
QuPath documentation, "Exporting annotations": coordinates in pixels of the full-resolution
image, origin at its top-left corner; GeoJSON features with ``objectType`` and ``classification``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .slides import TissueMask

__all__ = ["tissue_polygons", "polygon_area", "outlines_geojson", "write_tissue_outlines", "TISSUE_COLOR"]

#: QuPath's display colour of the "Tissue" class (RGB): matplotlib's tab:green, as plot_tile_grid draws tiles.
TISSUE_COLOR = (44, 160, 44)


def tissue_polygons(mask: TissueMask, level0_size: tuple[int, int], *, tolerance: float = 0.5) -> list[list[np.ndarray]]:
    """The outline of a tissue mask as polygons in level-0 pixel coordinates.

    Parameters
    ----------
    mask : TissueMask
        From :func:`~mmsurv.io.slides.tissue_mask`.
    level0_size : (width, height)
        The slide's level-0 size in pixels (``Slide.dimensions``); the mask covers the whole slide.
    tolerance : float, default 0.5
        Largest distance, in mask pixels, a simplified ring may stray from the traced one.

    Returns
    -------
    list of polygons
        One polygon per connected piece of tissue (pixels touching by an edge; pieces touching
        only at a corner are two polygons). A polygon is a list of rings, each an (n, 2) float
        array of (x, y) level-0 pixels, closed (first point == last point): the outer ring
        first, with a positive shoelace area (:func:`polygon_area`), then one ring per hole in
        that piece, with a negative area. A piece of tissue inside a hole of another is a
        polygon of its own. :func:`~mmsurv.io.slides.tissue_mask` fills holes, so its polygons
        have outer rings only.
    """
    from skimage.measure import approximate_polygon, find_contours

    pixels = np.asarray(mask.mask, dtype=bool)
    if pixels.ndim != 2:
        raise ValueError(f"a tissue mask must be 2-D, got shape {pixels.shape}")
    width, height = level0_size
    scale = np.array([width / pixels.shape[1], height / pixels.shape[0]])
    outer: list[np.ndarray] = []
    holes: list[np.ndarray] = []
    for contour in find_contours(np.pad(pixels, 1).astype(np.float32), 0.5):
        ring = approximate_polygon(contour[:, ::-1] - 0.5, tolerance=tolerance)  # (row, col) -> (x, y) pixel edges
        if len(ring) < 4:  # fewer than three corners: nothing left to outline
            continue
        ring[-1] = ring[0]
        area = polygon_area(ring)
        if area > 0:
            outer.append(ring * scale)
        elif area < 0:
            holes.append(ring * scale)
    polygons = [[ring] for ring in outer]
    areas = [polygon_area(ring) for ring in outer]
    for hole in holes:
        around = [i for i, ring in enumerate(outer) if _inside(hole[0], ring)]
        if around:  # the smallest outer ring around a hole is the piece of tissue it is a hole in
            polygons[min(around, key=areas.__getitem__)].append(hole)
    return polygons


def polygon_area(ring: np.ndarray) -> float:
    """Signed area of a closed ring of (x, y) points by the shoelace formula.

    Positive for a ring that turns counter-clockwise when y points up (the right-hand rule of
    RFC 7946 for outer rings); on screen, with y pointing down, such a ring looks clockwise.
    """
    x, y = np.asarray(ring, dtype=float).T
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def _inside(point: np.ndarray, ring: np.ndarray) -> bool:
    """Whether a point lies inside a closed ring (even-odd rule: count the edges a ray to the right crosses)."""
    x, y = point
    x0, y0, x1, y1 = ring[:-1, 0], ring[:-1, 1], ring[1:, 0], ring[1:, 1]
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return bool(np.count_nonzero(straddles & (crossing_x > x)) % 2)


def outlines_geojson(polygons: Sequence[Sequence[np.ndarray]], *, name: str = "Tissue", color: Sequence[int] = TISSUE_COLOR) -> dict:
    """A GeoJSON FeatureCollection of polygons, one QuPath annotation each.

    Parameters
    ----------
    polygons : list of polygons
        As :func:`tissue_polygons` returns them: lists of closed (n, 2) rings, outer ring first.
    name : str, default "Tissue"
        The annotations' class in QuPath.
    color : (R, G, B), default :data:`TISSUE_COLOR`
        The class's colour, 0-255.

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}``; each feature a ``Polygon`` with
        properties ``objectType: "annotation"`` and ``classification: {name, color}``, the
        fields QuPath reads. Coordinates are rounded to 0.1 px.
    """
    classification = {"name": name, "color": [int(c) for c in color]}
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [np.round(np.asarray(ring, dtype=float), 1).tolist() for ring in polygon]},
            "properties": {"objectType": "annotation", "classification": dict(classification)},
        }
        for polygon in polygons
    ]
    return {"type": "FeatureCollection", "features": features}


def write_tissue_outlines(path: str | os.PathLike, mask: TissueMask, level0_size: tuple[int, int]) -> Path:
    """Write a slide's tissue outline as a GeoJSON file QuPath imports (atomically).

    Parameters
    ----------
    path : path-like
        The ``.geojson`` file; its folder is created.
    mask : TissueMask
    level0_size : (width, height)
        The slide's level-0 size in pixels.

    Returns
    -------
    Path
    """
    path = Path(path)
    collection = outlines_geojson(tissue_polygons(mask, level0_size))
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(collection, separators=(",", ":")))
    return path
