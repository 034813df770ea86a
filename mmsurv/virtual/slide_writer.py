"""Write virtual slides as tiled, pyramidal Aperio SVS files, one tile at a time.

TCGA's diagnostic slides are Aperio ``.svs`` files: a TIFF whose first page is the
full-resolution image cut into JPEG tiles, whose ``ImageDescription`` starts with
``Aperio`` and carries ``MPP = ...`` (microns per pixel) and ``AppMag = ...``, followed by a
small stripped thumbnail and by tiled pages of decreasing resolution (the pyramid).
The virtual slides follow that layout, so OpenSlide and tiffslide open them exactly as they
open a real TCGA slide.

Tiles are produced by a ``region`` callable and handed to tifffile as a generator: memory
use stays at a few tiles whatever the slide size.

Older TCGA slides hold JPEG 2000 tiles instead of JPEG: ``compression="jpeg2000-ycbcr"`` writes
them as Aperio's TIFF compression 33003 does (OpenSlide's Aperio format notes: YCbCr samples -
JPEG's full-range BT.601 transform - coded without the codestream's own colour transform, the
TIFF still saying RGB), ``"jpeg2000-rgb"`` as 33005 (RGB samples).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tifffile

from ..atomic import atomic_path
from .tissue import TissueRecipe, render_tissue

__all__ = ["RegionRenderer", "COMPRESSIONS", "write_svs", "write_virtual_slide", "pyramid_shapes", "repeating_tissue", "to_ycbcr"]

#: ``region(x_um, y_um, width_px, height_px, mpp) -> uint8 RGB array``
RegionRenderer = Callable[[float, float, int, int, float], np.ndarray]

_TILE = 256
_THUMBNAIL_MAX_PX = 768
#: Tile compressions :func:`write_svs` writes: TIFF compression code and Aperio's name for it.
COMPRESSIONS = {"jpeg": (7, "JPEG/RGB"), "jpeg2000-ycbcr": (33003, "J2K/YUV16"), "jpeg2000-rgb": (33005, "J2K/KDU")}


def pyramid_shapes(width: int, height: int, *, min_size: int = 512) -> list[tuple[int, int]]:
    """(width, height) of every level, halving until the longer side is below ``min_size``.

    Aperio scanners step by 4; halving gives finer choices of magnification and is what
    ``vips tiffsave --pyramid`` writes. Both are valid pyramids for OpenSlide.
    """
    shapes = [(int(width), int(height))]
    while max(shapes[-1]) > min_size:
        w, h = shapes[-1]
        shapes.append((max(1, w // 2), max(1, h // 2)))
    return shapes


def _tiles(region: RegionRenderer, width: int, height: int, mpp: float, tile: int) -> Iterator[np.ndarray]:
    """Row-major tiles of one level; edge tiles are padded to full size, as TIFF requires."""
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            w, h = min(tile, width - x), min(tile, height - y)
            pixels = region(x * mpp, y * mpp, w, h, mpp)
            if (h, w) != (tile, tile):
                padded = np.full((tile, tile, 3), 255, dtype=np.uint8)
                padded[:h, :w] = pixels
                pixels = padded
            yield pixels


def to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB to YCbCr with JPEG's full-range BT.601 transform (uint8 in, uint8 out)."""
    r, g, b = (rgb[..., k].astype(np.float32) for k in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.clip(np.rint(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


def _aperio_description(width: int, height: int, mpp: float, tile: int, quality: int, extra: dict[str, str], codec: str = "JPEG/RGB") -> str:
    magnification = 10.0 / mpp  # 0.25 um/px ~ 40x, 0.5 ~ 20x
    fields = {"AppMag": f"{magnification:g}", "MPP": f"{mpp:.4f}", **extra}
    header = f"Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {width}x{height}] ({tile}x{tile}) {codec} Q={quality}"
    return "|".join([header] + [f"{k} = {v}" for k, v in fields.items()])


def write_svs(
    path: str | os.PathLike,
    region: RegionRenderer,
    width: int,
    height: int,
    mpp: float,
    *,
    quality: int = 85,
    metadata: dict[str, str] | None = None,
    pyramid: bool = True,
    compression: str = "jpeg",
) -> Path:
    """Write a tiled pyramidal Aperio-style SVS file, tile by tile.

    Parameters
    ----------
    path : path-like
        Destination; written to a temporary name and renamed when complete.
    region : callable
        ``region(x_um, y_um, width_px, height_px, mpp)`` returns RGB uint8 pixels.
    width, height : int
        Full-resolution size in pixels.
    mpp : float
        Microns per pixel at full resolution.
    quality : int, default 85
        JPEG quality (JPEG 2000: imagecodecs' ``level``).
    metadata : dict, optional
        Extra ``key = value`` fields for the Aperio description (e.g. ``Filename``).
    pyramid : bool, default True
        False writes a single full-resolution level (a badly formed slide, for tests).
    compression : {"jpeg", "jpeg2000-ycbcr", "jpeg2000-rgb"}, default "jpeg"
        The tiles' compression (see the module notes); the thumbnail is JPEG, as Aperio's is.

    Returns
    -------
    Path
    """
    path = Path(path)
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {sorted(COMPRESSIONS)}, got {compression!r}")
    code, codec = COMPRESSIONS[compression]
    shapes = pyramid_shapes(width, height) if pyramid else [(width, height)]
    description = _aperio_description(width, height, mpp, _TILE, quality, metadata or {}, codec)
    big = width * height * 3 > 2**31
    tile_region = _in_ycbcr(region) if code == 33003 else region
    with atomic_path(path) as partial, tifffile.TiffWriter(partial, bigtiff=big) as tif:
        options = dict(dtype=np.uint8, metadata=None, photometric="rgb", compression="jpeg", compressionargs={"level": quality})
        j2k = {"mct": code != 33003} if code != 7 else {}  # 33003: no colour transform in the codestream
        tiled = {**options, "compression": code, "compressionargs": {"level": quality, **j2k}}
        resolution = dict(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
        tif.write(
            _tiles(tile_region, width, height, mpp, _TILE),
            shape=(height, width, 3),
            tile=(_TILE, _TILE),
            description=description,
            **resolution,
            **tiled,
        )
        scale = max(width, height) / _THUMBNAIL_MAX_PX
        if pyramid:
            thumb_w, thumb_h = max(1, round(width / scale)), max(1, round(height / scale))
            thumbnail = region(0.0, 0.0, thumb_w, thumb_h, mpp * width / thumb_w)
            tif.write(thumbnail, description=f"Aperio Image Library v12.0.15 \r\n{width}x{height} -> {thumb_w}x{thumb_h} - ", **options)
        for level_width, level_height in shapes[1:]:
            level_mpp = mpp * width / level_width
            tif.write(
                _tiles(tile_region, level_width, level_height, level_mpp, _TILE),
                shape=(level_height, level_width, 3),
                tile=(_TILE, _TILE),
                description=f"Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {width}x{height}] "
                f"({_TILE}x{_TILE}) -> {level_width}x{level_height} {codec} Q={quality}",
                **tiled,
            )
    return path


def _in_ycbcr(region: RegionRenderer) -> RegionRenderer:
    def ycbcr_region(x_um: float, y_um: float, w: int, h: int, level_mpp: float) -> np.ndarray:
        return to_ycbcr(region(x_um, y_um, w, h, level_mpp))

    return ycbcr_region


def write_virtual_slide(path: str | os.PathLike, recipe: TissueRecipe, mpp: float, *, metadata: dict[str, str] | None = None) -> Path:
    """Render a :class:`TissueRecipe` into an SVS file at ``mpp`` microns per pixel."""
    width, height = round(recipe.width_um / mpp), round(recipe.height_um / mpp)

    def region(x_um: float, y_um: float, w: int, h: int, level_mpp: float) -> np.ndarray:
        return render_tissue(recipe, x_um, y_um, w, h, level_mpp)

    return write_svs(path, region, width, height, mpp, metadata=metadata)


def repeating_tissue(recipe: TissueRecipe, *, bank_size: int = 16, tile_px: int = _TILE) -> RegionRenderer:
    """A fast renderer for very large slides: the tissue outline is computed, the texture reused.

    Rendering every pixel of a 40,000 px slide procedurally takes minutes. For I/O
    benchmarks only the file's structure matters, so this renderer draws the slide's outline
    at low resolution and fills tissue with tiles picked from a small bank of rendered tissue
    (per resolution; tile seams show). Overview levels (4 um/px and coarser) are rendered
    properly. Only for tile-aligned requests, as :func:`write_svs` makes them.
    """
    banks: dict[float, list[np.ndarray]] = {}
    background = render_tissue(recipe, 0.0, 0.0, 1, 1, 1.0)[0, 0].astype(np.float32)

    def bank(mpp: float) -> list[np.ndarray]:
        if mpp not in banks:
            rng = np.random.default_rng(recipe.seed)
            centre_x, centre_y = recipe.width_um / 2, recipe.height_um / 2
            banks[mpp] = [
                render_tissue(
                    recipe,
                    centre_x + rng.uniform(-1, 1) * 0.2 * recipe.width_um,
                    centre_y + rng.uniform(-1, 1) * 0.2 * recipe.height_um,
                    tile_px,
                    tile_px,
                    mpp,
                ).astype(np.float32)
                for _ in range(bank_size)
            ]
        return banks[mpp]

    def region(x_um: float, y_um: float, width: int, height: int, mpp: float) -> np.ndarray:
        if mpp >= 4.0:  # overview levels are small: render them properly, so thumbnails look right
            return render_tissue(recipe, x_um, y_um, width, height, mpp)
        step = max(1, min(width, height) // 16)
        coarse = render_tissue(recipe, x_um, y_um, -(-width // step), -(-height // step), mpp * step).astype(np.float32)
        tissue = np.clip(np.abs(coarse - background).sum(axis=-1) / 60.0, 0.0, 1.0)
        if tissue.max() == 0.0:
            return np.broadcast_to(background.astype(np.uint8), (height, width, 3))
        weight = np.repeat(np.repeat(tissue, step, axis=0), step, axis=1)[:height, :width, None]
        pick = bank(mpp)[int(x_um / mpp / tile_px * 7 + y_um / mpp / tile_px * 13) % bank_size]
        if pick.shape[:2] != (height, width):
            pick = np.resize(pick, (height, width, 3))
        return (background * (1 - weight) + pick * weight).astype(np.uint8)

    return region
