"""Whole-slide images: open a pyramidal TIFF / Aperio SVS, find tissue, lay a tile grid.

Whole-slide images are far too large to load (a 40x slide is ~100,000 x 80,000 pixels, ~24 GB
of RGB), so every step here reads only what it needs: a low-resolution pyramid level for the
tissue mask and thumbnails, and one tile (or one strip of tiles) at a time for models.

Two backends read the files:

``"tiffslide"``
    A pure-Python reader on tifffile / zarr (JPEG tiles decoded by imagecodecs) with
    OpenSlide's API. TIFF-family formats only (Aperio ``.svs``, generic tiled ``.tif``).
``"openslide"``
    The OpenSlide C library, shipped as a wheel by ``openslide-bin``. Reads Aperio, Hamamatsu,
    MIRAX, Philips, generic tiled TIFF and more.

``"auto"`` (default) chooses by what the file holds, not by its suffix. TCGA's Aperio slides
come in two compressions: plain JPEG tiles (TIFF compression 7) and, in older archives, JPEG
2000 tiles - code 33003 (YCbCr samples, no colour transform in the codestream) or 33005 (RGB).
For JPEG, tiffslide: measured on a 40,960 px SVS with ``benchmarks/tiling.py`` (2 CPUs) it read
224-px tiles faster through :class:`~mmsurv.io.tiles.TileDataset` with two workers - in order
2,575 vs 1,133 tiles/s, shuffled 1,457 vs 1,013 - mostly because a strip read decodes each JPEG
tile once and tiffslide returns RGB rather than premultiplied RGBA. For JPEG 2000, OpenSlide:
tiffslide (through tifffile) hands 33003's YCbCr samples back *as RGB* - every colour wrong,
without an error - and reads JPEG 2000 tiles more slowly than OpenSlide in every path measured
(33005, 16,384 px slide: 1.1x to 3.1x; the README's benchmark notes). Asking for tiffslide on a
33003 file is refused. Non-TIFF formats (Hamamatsu, MIRAX, Philips, ...) go to OpenSlide, which
reads them.

References
----------
Goode A. et al., "OpenSlide: A vendor-neutral software foundation for digital pathology",
J Pathol Inform 4:27 (2013).
Lu M.Y. et al., "Data-efficient and weakly supervised computational pathology on whole-slide
images" (CLAM), Nat Biomed Eng 5:555-570 (2021) - the saturation-threshold tissue mask.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from .errors import DataFormatError
from .tiff_check import check_tiff_structure

__all__ = [
    "Slide",
    "TissueMask",
    "TileGrid",
    "open_slide",
    "tissue_mask",
    "tile_grid",
    "plot_tile_grid",
    "choose_backend",
    "BACKENDS",
]

BACKENDS = ("auto", "openslide", "tiffslide")
_TIFF_SUFFIXES = {".svs", ".tif", ".tiff"}
#: TIFF compression codes of JPEG 2000 tiles: Aperio YCbCr (33003), Aperio RGB (33005) - the two
#: OpenSlide's Aperio reader documents - and the generic code (34712).
JPEG2000_COMPRESSIONS = frozenset({33003, 33005, 34712})
#: Aperio's JPEG 2000 with YCbCr samples: tiffslide returns them unconverted, as if they were RGB.
APERIO_J2K_YCBCR = 33003

#: The smallest pyramid level must fit in this many pixels (longer side) for thumbnails.
MAX_OVERVIEW_PX = 8192


class Slide:
    """An open whole-slide image: levels, microns per pixel and region reads.

    Use :func:`open_slide` to create one. Coordinates passed to :meth:`read_region` are
    level-0 (full-resolution) pixels, as in OpenSlide.

    Attributes
    ----------
    path : Path
    backend : str
    mpp : float
        Microns per pixel at level 0.
    level_dimensions : list of (width, height)
    level_downsamples : list of float
    """

    def __init__(self, path: Path, handle: Any, backend: str, mpp: float) -> None:
        self.path = path
        self.backend = backend
        self.mpp = mpp
        self._handle = handle
        self.level_dimensions: list[tuple[int, int]] = [tuple(map(int, d)) for d in handle.level_dimensions]
        self.level_downsamples: list[float] = [float(d) for d in handle.level_downsamples]

    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of level 0."""
        return self.level_dimensions[0]

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    def level_mpp(self, level: int) -> float:
        """Microns per pixel of a pyramid level."""
        return self.mpp * self.level_downsamples[level]

    def best_level_for_mpp(self, mpp: float) -> int:
        """The coarsest level still at least as fine as ``mpp`` (so tiles are downsampled, never upsampled)."""
        fine_enough = [lvl for lvl in range(self.level_count) if self.level_mpp(lvl) <= mpp * 1.01]
        return max(fine_enough) if fine_enough else 0

    def read_region(self, x: int, y: int, level: int, width: int, height: int) -> np.ndarray:
        """RGB pixels of a region, shape (height, width, 3), uint8.

        ``x, y`` are level-0 coordinates of the top-left corner; ``width, height`` are in
        pixels of ``level``. Transparent pixels outside the scanned area come back white.

        Raises
        ------
        ValueError
            ``level`` is not a level of the slide, or the region is empty.
        DataFormatError
            The backend cannot decode the region (damaged tile bytes).
        """
        if not 0 <= level < self.level_count or width < 1 or height < 1:
            raise ValueError(f"{self.path.name}: cannot read {width} x {height} px at level {level} (the slide has {self.level_count} levels)")
        try:
            rgba = self._handle.read_region((int(x), int(y)), int(level), (int(width), int(height)))
        except Exception as error:  # a tile that does not decode: damage inside the image data, which open_slide cannot see
            raise DataFormatError(self.path, f"{self.backend} cannot read {width} x {height} px at ({x}, {y}) of level {level}: {error}") from error
        return _rgba_on_white(np.asarray(rgba))

    def thumbnail(self, mpp: float = 16.0) -> np.ndarray:
        """The whole slide at about ``mpp`` microns per pixel, read from the nearest pyramid level."""
        level = self.best_level_for_mpp(mpp)
        width, height = self.level_dimensions[level]
        if max(width, height) > MAX_OVERVIEW_PX:
            raise DataFormatError(
                self.path,
                f"no pyramid level near {mpp} um/px: the nearest is {width:,} x {height:,} px, "
                f"too large to read whole (limit {MAX_OVERVIEW_PX:,} px)",
            )
        pixels = self.read_region(0, 0, level, width, height)
        scale = self.level_mpp(level) / mpp
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BOX))

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.dimensions
        return f"Slide({self.path.name!r}, {w}x{h} px, {self.mpp:g} um/px, {self.level_count} levels, {self.backend})"


def _rgba_on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite RGBA (OpenSlide returns premultiplied alpha; outside the scan is transparent) on white."""
    if rgba.shape[-1] == 3:
        return rgba
    if rgba[..., 3].min() == 255:  # inside the scanned area (almost always): nothing to composite
        return rgba[..., :3]
    alpha = rgba[..., 3:4].astype(np.uint16)
    rgb = rgba[..., :3].astype(np.uint16) + (255 - alpha)
    return np.minimum(rgb, 255).astype(np.uint8)


def _backend_module(backend: str) -> tuple[Any, str]:
    if backend == "openslide":
        import openslide

        return openslide.OpenSlide, "openslide.mpp-x"
    import tiffslide

    return tiffslide.TiffSlide, "tiffslide.mpp-x"


def choose_backend(path: Path, backend: str, compression: int | None) -> str:
    """The backend that reads ``path``: ``backend`` itself, or for ``"auto"`` the one its compression calls for.

    Parameters
    ----------
    path : Path
    backend : {"auto", "openslide", "tiffslide"}
    compression : int or None
        The TIFF compression code of the full-resolution page (None: not a TIFF-family file).

    Raises
    ------
    DataFormatError
        tiffslide asked for on Aperio JPEG 2000 YCbCr tiles (it would return wrong colours).
    """
    if backend == "tiffslide" and compression == APERIO_J2K_YCBCR:
        raise DataFormatError(
            path,
            "holds Aperio JPEG 2000 tiles with YCbCr samples (TIFF compression 33003), which tiffslide returns "
            "unconverted as RGB - every colour wrong; open it with backend='openslide' (or 'auto', which does)",
        )
    if backend != "auto":
        return backend
    if compression is None or compression in JPEG2000_COMPRESSIONS:
        return "openslide"
    return "tiffslide"


def open_slide(path: str | os.PathLike, *, backend: str = "auto", mpp: float | None = None) -> Slide:
    """Open a whole-slide image after checking that it is complete and pyramidal.

    Parameters
    ----------
    path : path-like
        An Aperio ``.svs`` or a tiled pyramidal TIFF (other OpenSlide formats with the
        ``openslide`` backend).
    backend : {"auto", "openslide", "tiffslide"}, default "auto"
        "auto": OpenSlide for JPEG 2000 tiles and for non-TIFF formats, tiffslide for the rest
        (JPEG tiles; see the module notes).
    mpp : float, optional
        Microns per pixel at level 0, for files whose metadata lack it. Overrides the file.

    Returns
    -------
    Slide

    Raises
    ------
    DataFormatError
        The file is missing, not a TIFF, truncated, has no pyramid, has no resolution metadata
        (and ``mpp`` was not given), or holds Aperio JPEG 2000 YCbCr tiles and ``backend`` is
        ``"tiffslide"``.
    """
    path = Path(path)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not path.is_file():
        raise DataFormatError(path, "no such slide file")
    compression = check_tiff_structure(path, max_overview_px=MAX_OVERVIEW_PX) if path.suffix.lower() in _TIFF_SUFFIXES else None
    backend = choose_backend(path, backend, compression)
    opener, mpp_property = _backend_module(backend)
    try:
        handle = opener(str(path))
    except Exception as error:  # each backend raises its own exception types
        raise DataFormatError(path, f"{backend} cannot open it: {error}") from error
    if mpp is None:
        value = handle.properties.get(mpp_property)
        if value in (None, ""):
            handle.close()
            raise DataFormatError(path, "no microns-per-pixel in the metadata; pass mpp= if you know the scan resolution")
        mpp = float(value)
    if not mpp > 0:
        handle.close()
        raise DataFormatError(path, f"microns per pixel must be positive, got {mpp}")
    return Slide(path, handle, backend, float(mpp))


@dataclass
class TissueMask:
    """A boolean tissue mask of a slide at ``mpp`` microns per pixel (True = tissue)."""

    mask: np.ndarray
    mpp: float

    @property
    def tissue_fraction(self) -> float:
        return float(self.mask.mean())


def tissue_mask(
    slide: Slide,
    *,
    mpp: float = 16.0,
    min_saturation: float = 0.06,
    min_area_um2: float = 20_000.0,
) -> TissueMask:
    """Separate tissue from the bright, grey glass background.

    Stained tissue is coloured, glass is not: threshold the HSV saturation of a thumbnail
    (Otsu's threshold, never below ``min_saturation``), close small gaps, fill holes, and drop
    specks smaller than ``min_area_um2`` - the recipe CLAM popularised.

    Parameters
    ----------
    slide : Slide
    mpp : float, default 16.0
        Resolution of the mask (16 um/px turns a 40x slide into ~1/64 of its width).
    min_saturation : float, default 0.06
        Lower bound on the threshold, so an empty slide does not produce tissue from noise.
    min_area_um2 : float, default 20,000
        Smallest tissue fragment kept.

    Returns
    -------
    TissueMask
    """
    from skimage.filters import threshold_otsu

    thumbnail = slide.thumbnail(mpp).astype(np.float32) / 255.0
    brightest, darkest = thumbnail.max(axis=-1), thumbnail.min(axis=-1)
    saturation = np.where(brightest > 0, (brightest - darkest) / np.maximum(brightest, 1e-6), 0.0)
    saturation = ndimage.median_filter(saturation, size=3)
    spread = saturation.max() - saturation.min()
    threshold = max(float(threshold_otsu(saturation)) if spread > 1e-3 else 1.0, min_saturation)
    mask = saturation > threshold
    mask = ndimage.binary_closing(mask, structure=np.ones((3, 3)), iterations=2)
    mask = ndimage.binary_fill_holes(mask)
    labels, n = ndimage.label(mask)
    if n:
        areas = ndimage.sum(mask, labels, index=np.arange(1, n + 1)) * mpp**2
        mask = np.isin(labels, 1 + np.flatnonzero(areas >= min_area_um2))
    return TissueMask(mask=mask, mpp=mpp)


@dataclass
class TileGrid:
    """Square tiles over the tissue of one slide, at a chosen resolution.

    Attributes
    ----------
    slide_path : Path
    mpp : float
        Microns per pixel of the tiles handed to a model.
    tile_px : int
        Tile side in pixels at ``mpp``.
    level : int
        Pyramid level read (the coarsest level at least as fine as ``mpp``).
    read_px : int
        Tile side in pixels of ``level``; resized to ``tile_px`` when the two differ.
    tiles : DataFrame
        One row per tile: ``x``, ``y`` (level-0 top-left corner), ``row``, ``col`` and
        ``tissue_fraction``.
    slide_mpp : float, optional
        Microns per pixel of the slide's level 0 as it was opened (from its metadata or the
        ``mpp=`` given to :func:`open_slide`): readers reopen the slide with it.
    """

    slide_path: Path
    mpp: float
    tile_px: int
    level: int
    read_px: int
    tiles: pd.DataFrame
    slide_mpp: float | None = None

    @property
    def tile_um(self) -> float:
        return self.tile_px * self.mpp

    def __len__(self) -> int:
        return len(self.tiles)


def tile_grid(
    slide: Slide,
    *,
    mpp: float = 0.5,
    tile_px: int = 224,
    min_tissue: float = 0.5,
    mask: TissueMask | None = None,
) -> TileGrid:
    """Lay a non-overlapping grid of tiles and keep those with enough tissue.

    Parameters
    ----------
    slide : Slide
    mpp : float, default 0.5
        Target microns per pixel (0.5 is about 20x; 0.25 about 40x).
    tile_px : int, default 224
        Tile side at ``mpp``.
    min_tissue : float, default 0.5
        Minimum fraction of a tile covered by the tissue mask.
    mask : TissueMask, optional
        Default: :func:`tissue_mask` of the slide.

    Returns
    -------
    TileGrid
    """
    if mpp < slide.mpp * 0.99:
        raise ValueError(f"{slide.path.name}: requested {mpp} um/px is finer than the scan ({slide.mpp:g} um/px)")
    if not 0 <= min_tissue <= 1:
        raise ValueError(f"min_tissue must be in [0, 1], got {min_tissue}")
    mask = tissue_mask(slide) if mask is None else mask
    level = slide.best_level_for_mpp(mpp)
    read_px = int(round(tile_px * mpp / slide.level_mpp(level)))
    tile_level0 = tile_px * mpp / slide.mpp  # tile side in level-0 pixels
    width, height = slide.dimensions
    n_cols, n_rows = int(width // tile_level0), int(height // tile_level0)

    # tissue fraction of every tile from a summed-area table of the mask
    scale = slide.mpp / mask.mpp  # mask pixels per level-0 pixel
    summed = np.pad(mask.mask.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    top = np.clip(np.round(rows * tile_level0 * scale).astype(int), 0, mask.mask.shape[0])
    bottom = np.clip(np.round((rows + 1) * tile_level0 * scale).astype(int), 0, mask.mask.shape[0])
    left = np.clip(np.round(cols * tile_level0 * scale).astype(int), 0, mask.mask.shape[1])
    right = np.clip(np.round((cols + 1) * tile_level0 * scale).astype(int), 0, mask.mask.shape[1])
    area = np.maximum((bottom - top) * (right - left), 1)
    inside = summed[bottom, right] - summed[top, right] - summed[bottom, left] + summed[top, left]
    fraction = inside / area
    keep = fraction >= min_tissue
    tiles = pd.DataFrame(
        {
            "x": np.round(cols[keep] * tile_level0).astype(np.int64),
            "y": np.round(rows[keep] * tile_level0).astype(np.int64),
            "row": rows[keep],
            "col": cols[keep],
            "tissue_fraction": fraction[keep],
        }
    )
    return TileGrid(slide_path=slide.path, mpp=mpp, tile_px=tile_px, level=level, read_px=read_px, tiles=tiles, slide_mpp=slide.mpp)


def plot_tile_grid(
    slide: Slide,
    grid: TileGrid,
    *,
    values: np.ndarray | None = None,
    thumbnail_mpp: float = 8.0,
    ax: Any = None,
    cmap: str = "magma",
    alpha: float = 0.5,
    title: str | None = None,
    value_label: str = "value per tile",
) -> Any:
    """The slide thumbnail with the tile grid drawn over it, optionally coloured by ``values``.

    Parameters
    ----------
    slide : Slide
    grid : TileGrid
    values : array of shape (len(grid),), optional
        One value per tile (e.g. a model's prediction): draws a heatmap instead of outlines.
    thumbnail_mpp : float, default 8.0
    ax : matplotlib Axes, optional
    cmap : str, default "magma"
    alpha : float, default 0.5
        Opacity of the heatmap.
    title : str, optional
    value_label : str, default "value per tile"
        What ``values`` are, written beside the colour bar (e.g. ``"predicted proliferation score"``).

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    thumbnail = slide.thumbnail(thumbnail_mpp)
    ax.imshow(thumbnail)
    to_thumb = slide.mpp / thumbnail_mpp
    side = grid.tile_um / thumbnail_mpp
    boxes = [Rectangle((x * to_thumb, y * to_thumb), side, side) for x, y in zip(grid.tiles["x"], grid.tiles["y"])]
    if values is None:
        ax.add_collection(PatchCollection(boxes, facecolor="none", edgecolor="tab:green", linewidth=0.6))
    else:
        values = np.asarray(values, dtype=float)
        if values.shape != (len(grid),):
            raise ValueError(f"values must have one entry per tile ({len(grid)}), got shape {values.shape}")
        patches = PatchCollection(boxes, cmap=cmap, alpha=alpha, linewidth=0)
        patches.set_array(values)
        ax.add_collection(patches)
        ax.figure.colorbar(patches, ax=ax, fraction=0.046, pad=0.04, label=value_label)
    ax.set_title(title or f"{slide.path.name}: {len(grid)} tiles of {grid.tile_px} px at {grid.mpp:g} um/px", fontsize=9)
    ax.set_axis_off()
    return ax
