"""Looking at what a tile model learned: prediction heatmaps, tile galleries, a slide browser.

The heatmap itself is :func:`mmsurv.io.slides.plot_tile_grid` with ``values``; this module
adds galleries of the highest- and lowest-scoring tiles and an interactive browser for
notebooks (ipywidgets is imported only when the browser is built).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..io.slides import TileGrid, open_slide, plot_tile_grid
from ..io.tiles import TileDataset

__all__ = ["plot_tile_gallery", "slide_browser", "tile_values_by_slide"]


def plot_tile_gallery(dataset: TileDataset, values: np.ndarray, *, n: int = 8, title: str = "", fig: Any = None) -> Any:
    """Two rows of tiles: the ``n`` with the highest and the ``n`` with the lowest ``values``.

    Parameters
    ----------
    dataset : TileDataset
    values : array, shape (len(dataset),)
        One value per tile (e.g. the predicted proliferation score).
    n : int, default 8
    title : str

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    values = np.asarray(values, dtype=float)
    if values.shape != (len(dataset),):
        raise ValueError(f"values must have one entry per tile ({len(dataset)}), got shape {values.shape}")
    order = np.argsort(values)
    n = min(n, len(order) // 2)
    fig = fig or plt.figure(figsize=(1.4 * n, 3.3))
    axes = fig.subplots(2, n, squeeze=False)
    for row, (label, picks) in enumerate((("highest", order[::-1][:n]), ("lowest", order[:n]))):
        for ax, index in zip(axes[row], picks):
            ax.imshow(dataset.read_tile(int(index)))
            ax.set_title(f"{values[index]:.2f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def slide_browser(
    slides: Mapping[str, str | os.PathLike],
    grids: Mapping[str, TileGrid],
    tile_values: Mapping[str, np.ndarray],
    *,
    label: str = "prediction",
) -> Any:
    """An ipywidgets browser: pick a slide, set the heatmap opacity, inspect one tile.

    Parameters
    ----------
    slides : mapping slide id -> path
    grids : mapping slide id -> TileGrid
    tile_values : mapping slide id -> array with one value per tile of that slide's grid
    label : str
        What the values are, for titles.

    Returns
    -------
    ipywidgets.Widget
        Display it in a notebook; nothing in a headless run depends on it.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    names = [s for s in slides if s in grids and s in tile_values]
    if not names:
        raise ValueError("no slide has both a tile grid and tile values")
    picker = widgets.Dropdown(options=names, description="slide")
    opacity = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="opacity")
    tile = widgets.IntSlider(value=0, min=0, max=len(grids[names[0]]) - 1, description="tile")
    output = widgets.Output()

    def draw(*_: object) -> None:
        grid = grids[picker.value]
        tile.max = max(len(grid) - 1, 0)
        values = np.asarray(tile_values[picker.value], dtype=float)
        with output:
            output.clear_output(wait=True)
            fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5), gridspec_kw={"width_ratios": [2, 1]})
            with open_slide(slides[picker.value]) as slide:
                plot_tile_grid(slide, grid, values=values, alpha=opacity.value, ax=left, title=f"{picker.value}: {label}", value_label=label)
            row = grid.tiles.iloc[tile.value]
            right.imshow(TileDataset(grid).read_tile(int(tile.value)))
            right.set_title(f"tile {tile.value} at ({int(row['x'])}, {int(row['y'])}): {label} {values[tile.value]:.2f}", fontsize=9)
            right.set_axis_off()
            plt.show()

    for control in (picker, opacity, tile):
        control.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([picker, opacity, tile]), output])


def tile_values_by_slide(tiles: pd.DataFrame, values: np.ndarray) -> dict[str, np.ndarray]:
    """Split a per-tile array into one array per slide (in each slide's grid order)."""
    values = np.asarray(values)
    return {slide_id: values[rows.index.to_numpy()] for slide_id, rows in tiles.groupby("slide_id", sort=False)}
