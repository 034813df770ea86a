"""Tiling a cohort's slides, and tile values back to slides.

The steps between the slide reader (:mod:`mmsurv.io.slides`) and a model that every pathology
notebook repeats: one tile grid per slide with at most ``max_tiles`` tiles sampled from the
tissue, one table of all tiles (slide, patient, split), and slide-level summaries of tile
predictions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..io.slides import TileGrid, open_slide, tile_grid
from ..io.tiles import tile_table

__all__ = ["tile_cohort", "aggregate_tiles"]


def tile_cohort(
    slides: Mapping[str, str | os.PathLike],
    *,
    mpp: float,
    tile_px: int,
    min_tissue: float = 0.5,
    max_tiles: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[TileGrid], pd.DataFrame]:
    """Tile grids of many slides, with at most ``max_tiles`` tiles each (a random sample).

    Parameters
    ----------
    slides : mapping slide id -> path
    mpp, tile_px, min_tissue : see :func:`mmsurv.io.slides.tile_grid`
    max_tiles : int, optional
        Tiles sampled per slide (seeded, so reproducible); default all.
    seed : int
    progress : bool

    Returns
    -------
    grids : list of TileGrid, in the order of ``slides``
    tiles : DataFrame
        One row per tile: ``slide`` (position in ``grids``), ``slide_id``, ``x``, ``y``,
        ``row``, ``col``, ``tissue_fraction``.
    """
    rng = np.random.default_rng(seed)
    grids = []
    for slide_id, path in tqdm(slides.items(), desc="tiling", leave=False, disable=not progress):
        with open_slide(path) as slide:
            grid = tile_grid(slide, mpp=mpp, tile_px=tile_px, min_tissue=min_tissue)
        if len(grid) == 0:
            raise ValueError(f"{slide_id}: no tile has {min_tissue:.0%} tissue at {mpp} um/px; lower min_tissue")
        if max_tiles is not None and len(grid) > max_tiles:
            keep = np.sort(rng.choice(len(grid), size=max_tiles, replace=False))
            grid = replace(grid, tiles=grid.tiles.iloc[keep].reset_index(drop=True))
        grids.append(grid)
    return grids, tile_table(grids, slide_ids=list(slides))


def aggregate_tiles(tiles: pd.DataFrame, values: np.ndarray, *, by: str = "slide_id", how: tuple[str, ...] = ("mean", "median")) -> pd.DataFrame:
    """Slide-level summaries of tile-level values (one row per slide, one column per ``how``).

    ``values`` may be 1D (one value per tile) or 2D (tiles x outputs; columns are then named
    ``<how>_<output index>``).
    """
    values = np.asarray(values)
    if len(values) != len(tiles):
        raise ValueError(f"{len(values)} values for {len(tiles)} tiles")
    columns = {"value": values} if values.ndim == 1 else {f"{k}": values[:, k] for k in range(values.shape[1])}
    frame = pd.DataFrame(columns, index=tiles.index).assign(**{by: tiles[by].to_numpy()})
    summary = frame.groupby(by, sort=False).agg(list(how))
    summary.columns = [f"{stat}" if name == "value" else f"{stat}_{name}" for name, stat in summary.columns]
    return summary
