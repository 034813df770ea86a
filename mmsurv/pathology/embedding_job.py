"""What both engines of ``mmsurv embed`` share: the job, its summary, planning and saving a slide.

:func:`~mmsurv.pathology.cohort_embedding.embed_cohort` decides which slides need work and
builds one :class:`EmbeddingJob`; an engine - the local loop in
:mod:`~mmsurv.pathology.cohort_embedding` or Ray in :mod:`~mmsurv.pathology.ray_embedding` -
plans each slide (:meth:`EmbeddingJob.plan`), embeds its tiles and saves them
(:meth:`EmbeddingJob.save`). Both engines import this module and neither imports the other.

Files of one job, in ``<out>/<extractor>/``:

``<slide_id>.h5``
    The slide's features (:mod:`~mmsurv.pathology.feature_files`).
``outlines/<slide_id>.geojson``
    With ``outlines=True``: the outline of the tissue mask the tile grid was laid on
    (:mod:`~mmsurv.io.tissue_outlines`), for a pathologist to check in QuPath what was tiled.
    It sits beside the features it explains, so the folder of one run (one extractor, one set
    of tile settings, checked on every resume) stays whole and is deleted as a whole; the
    subfolder keeps it out of the ``*.h5`` listing readers use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.slides import TileGrid, open_slide, tile_grid, tissue_mask
from ..io.tissue_outlines import write_tissue_outlines
from .embeddings import grid_coords, grid_settings
from .extractors import Extractor
from .feature_files import feature_file, write_slide_features

__all__ = ["EmbeddingSummary", "EmbeddingJob", "plan_slide", "write_slide_outline", "outline_file", "OUTLINES_FOLDER"]

#: Subfolder of an extractor's folder holding the tissue outlines.
OUTLINES_FOLDER = "outlines"


@dataclass
class EmbeddingSummary:
    """What one ``embed_cohort`` call did."""

    folder: Path
    engine: str
    device: str
    embedded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    n_tiles: int = 0
    seconds: float = 0.0

    @property
    def tiles_per_second(self) -> float:
        return self.n_tiles / self.seconds if self.seconds > 0 else float("nan")

    def line(self) -> str:
        """One line for a log: slides embedded, already done and failed; tiles, tiles/s, device."""
        return (
            f"{len(self.embedded)} slides embedded, {len(self.skipped)} already done, {len(self.failed)} failed; "
            f"{self.n_tiles:,} tiles in {self.seconds:.1f} s ({self.tiles_per_second:,.0f} tiles/s) "
            f"on {self.device} ({self.engine} engine) -> {self.folder}"
        )


def outline_file(folder: str | os.PathLike, slide_id: str) -> Path:
    """Where a slide's tissue outline lives: ``<folder>/outlines/<slide_id>.geojson``."""
    return Path(folder) / OUTLINES_FOLDER / f"{slide_id}.geojson"


def plan_slide(path: str | os.PathLike, expected: Mapping[str, object], outline: str | os.PathLike | None = None) -> TileGrid:
    """Open a slide, find its tissue once, and lay its tile grid with the requested settings.

    A module-level function of plain arguments, so that a Ray task can run it on any node.

    Parameters
    ----------
    path : path-like
        The slide file.
    expected : mapping
        The job's settings; ``mpp``, ``tile_px`` and ``min_tissue`` are read.
    outline : path-like, optional
        Where to write the tissue mask's outline (GeoJSON), once the slide is known to have tiles.

    Raises
    ------
    DataFormatError
        The slide cannot be read.
    ValueError
        No tile has enough tissue (or the settings do not fit the slide).
    """
    path = Path(path)
    with open_slide(path) as slide:
        mask = tissue_mask(slide)  # tile_grid's own default, computed here once so that the outline is the grid's
        grid = tile_grid(slide, mpp=float(expected["mpp"]), tile_px=int(expected["tile_px"]), min_tissue=float(expected["min_tissue"]), mask=mask)
        size = slide.dimensions
    if len(grid) == 0:
        raise ValueError(f"{path.name}: no tile has {float(expected['min_tissue']):.0%} tissue at {expected['mpp']} um/px")
    if outline is not None:
        write_tissue_outlines(outline, mask, size)
    return grid


def write_slide_outline(path: str | os.PathLike, outline: str | os.PathLike) -> Path:
    """Write the tissue outline of a slide without tiling it (for a slide embedded by an earlier run)."""
    with open_slide(path) as slide:
        return write_tissue_outlines(outline, tissue_mask(slide), slide.dimensions)


@dataclass
class EmbeddingJob:
    """One ``embed_cohort`` request, as the engines need it.

    Attributes
    ----------
    folder : Path
        ``<out>/<extractor>``: where the feature files (and outlines) go.
    extractor : Extractor
        The built, checked network (the Ray engine sends its spec and fingerprint, never the network).
    expected : dict
        The settings every feature file carries (tile settings and the extractor's), which
        decide whether a file answers the request.
    summary : EmbeddingSummary
        Filled as slides are saved or fail.
    batch_size : int
    progress : bool
        Show progress bars.
    on_slide_written : callable, optional
        Called with each slide id once its file is in place.
    outlines : bool
        Write each planned slide's tissue outline (:func:`outline_file`).
    """

    folder: Path
    extractor: Extractor
    expected: dict[str, object]
    summary: EmbeddingSummary
    batch_size: int = 64
    progress: bool = True
    on_slide_written: Callable[[str], None] | None = None
    outlines: bool = False

    def outline_path(self, slide_id: str) -> Path | None:
        """Where the slide's outline goes, or None when outlines were not asked for."""
        return outline_file(self.folder, slide_id) if self.outlines else None

    def plan(self, slide_id: str, path: str | os.PathLike) -> TileGrid:
        """Lay a slide's tile grid (and write its outline when asked): :func:`plan_slide` with the job's settings."""
        return plan_slide(path, self.expected, self.outline_path(slide_id))

    def save(self, slide_id: str, grid: TileGrid, features: np.ndarray) -> None:
        """Write one slide's file (the request's settings and the grid's as attributes), count it, and report it."""
        write_slide_features(feature_file(self.folder, slide_id), features, grid_coords(grid), {**grid_settings(grid), **self.expected})
        self.summary.embedded.append(slide_id)
        self.summary.n_tiles += len(grid)
        if self.on_slide_written is not None:
            self.on_slide_written(slide_id)
