"""A whole cohort's slides to per-slide feature files: the engine behind ``mmsurv embed``.

Every slide with enough tissue is tiled at the requested resolution, each tile is embedded by a
frozen :class:`~mmsurv.pathology.extractors.Extractor`, and the slide's features are written to
``<out>/<extractor>/<slide_id>.h5`` (:mod:`~mmsurv.pathology.feature_files`). Slides whose file
already answers the request are skipped without opening the slide, so a killed run resumes
where it stopped; a slide that cannot be read is named, skipped and counted, and the rest
finish.

Two engines produce the same files:

``"local"``
    One process, slide after slide, on one device (the DataLoader's workers read tiles).
``"ray"``
    Ray Data across the cores and GPUs of one machine or a cluster
    (:mod:`~mmsurv.pathology.ray_embedding`; the ``mmsurv[scale]`` extra).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..environment import select_device
from ..io.errors import DataFormatError, DataWarning
from ..io.gdc import read_sample_sheet, sample_files
from ..io.slides import TileGrid, open_slide, tile_grid
from .embeddings import embed_grid, grid_coords, grid_settings
from .extractors import Extractor, ExtractorSpec
from .feature_files import feature_file, finished_slide, read_slide_features, write_slide_features

__all__ = ["EmbeddingSummary", "find_slides", "embed_cohort", "ENGINES", "SLIDE_SUFFIXES"]

ENGINES = ("local", "ray")
#: File types searched for when a cohort folder has no GDC sample sheet.
SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".bif")


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


def find_slides(cohort_dir: str | os.PathLike) -> dict[str, Path]:
    """A cohort folder's slide files by slide id (the file name without its suffix).

    A folder written by ``mmsurv fetch`` or the virtual cohort has ``gdc_sample_sheet.tsv``:
    its "Slide Image" rows are used. Any other folder is searched for slide files
    (:data:`SLIDE_SUFFIXES`), recursively.

    Raises
    ------
    DataFormatError
        No such folder, no slides in it, or two slides with the same id.
    """
    root = Path(cohort_dir)
    if not root.is_dir():
        raise DataFormatError(root, "no such cohort folder")
    sheet = root / "gdc_sample_sheet.tsv"
    if sheet.is_file():
        paths = list(sample_files(read_sample_sheet(sheet), root / "gdc", "Slide Image").values())
    else:
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in SLIDE_SUFFIXES and p.is_file())
    slides: dict[str, Path] = {}
    for path in map(Path, paths):
        slide_id = path.name[: -len(path.suffix)] if path.suffix else path.name
        if slide_id in slides:
            raise DataFormatError(path, f"a second slide with id {slide_id!r} (also {slides[slide_id]})")
        slides[slide_id] = path
    if not slides:
        raise DataFormatError(root, f"no slides found (no Slide Image rows in a sample sheet, no {', '.join(SLIDE_SUFFIXES)} files)")
    return slides


def embed_cohort(
    slides: str | os.PathLike | Mapping[str, str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    extractor: ExtractorSpec | None = None,
    mpp: float = 0.5,
    tile_px: int = 224,
    min_tissue: float = 0.5,
    batch_size: int = 64,
    device: str = "auto",
    engine: str = "local",
    num_workers: int = 0,
    actors: int | None = None,
    progress: bool = True,
    on_slide_written: Callable[[str], None] | None = None,
) -> EmbeddingSummary:
    """Embed every tile of every slide of a cohort into ``<out_dir>/<extractor>/<slide_id>.h5``.

    Parameters
    ----------
    slides : path-like or mapping slide id -> path
        A cohort folder (see :func:`find_slides`) or the slides themselves.
    out_dir : path-like
        Features folder; the extractor's subfolder is made in it.
    extractor : ExtractorSpec, optional
        Default: ``ExtractorSpec()`` (ResNet-50). Built, and its weights checked against the
        network and the tile size, before any slide is read.
    mpp, tile_px, min_tissue : see :func:`mmsurv.io.slides.tile_grid`
    batch_size : int, default 64
    device : str, default "auto"
        ``"auto"``: CUDA, then MPS, then CPU (for ``engine="ray"``: a GPU per actor when the
        cluster has them).
    engine : {"local", "ray"}
    num_workers : int, default 0
        DataLoader worker processes of the local engine.
    actors : int, optional
        Ray engine: backbone actors (default one per GPU, else half the CPUs).
    progress : bool
    on_slide_written : callable, optional
        Called with each slide id once its file is in place.

    Returns
    -------
    EmbeddingSummary

    Raises
    ------
    ValueError
        Unknown engine, weights that do not fit the backbone, a tile size the backbone refuses,
        or an output folder holding features made with other settings.
    DataFormatError
        No readable cohort folder.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    started = time.perf_counter()
    model = (extractor or ExtractorSpec()).build()
    model.check_tile_size(tile_px)
    slide_paths = {k: Path(v) for k, v in slides.items()} if isinstance(slides, Mapping) else find_slides(slides)
    folder = Path(out_dir) / model.name
    expected = {"mpp": float(mpp), "tile_px": int(tile_px), "min_tissue": float(min_tissue), **model.settings()}
    _refuse_other_settings(folder, expected)
    summary = EmbeddingSummary(folder=folder, engine=engine, device=device)
    todo = {}
    for slide_id, path in slide_paths.items():
        if finished_slide(feature_file(folder, slide_id), expected):
            summary.skipped.append(slide_id)
        else:
            todo[slide_id] = path
    if todo and engine == "local":
        summary.device = select_device(device)
        _embed_locally(todo, folder, model, expected, summary, batch_size, num_workers, progress, on_slide_written)
    elif todo:
        from .ray_embedding import embed_with_ray

        embed_with_ray(
            todo,
            folder,
            model,
            expected,
            summary,
            batch_size=batch_size,
            device=device,
            actors=actors,
            progress=progress,
            on_slide_written=on_slide_written,
        )
    for slide_id, problem in summary.failed.items():
        warnings.warn(f"slide {slide_id} skipped: {problem}", DataWarning, stacklevel=2)
    summary.seconds = time.perf_counter() - started
    return summary


def plan_slide(path: Path, expected: Mapping[str, object]) -> TileGrid:
    """Open a slide and lay its tile grid with the requested settings (raises DataFormatError / ValueError)."""
    with open_slide(path) as slide:
        grid = tile_grid(slide, mpp=float(expected["mpp"]), tile_px=int(expected["tile_px"]), min_tissue=float(expected["min_tissue"]))
    if len(grid) == 0:
        raise ValueError(f"{path.name}: no tile has {float(expected['min_tissue']):.0%} tissue at {expected['mpp']} um/px")
    return grid


def save_slide(
    slide_id: str,
    grid: TileGrid,
    features: np.ndarray,
    folder: Path,
    expected: Mapping[str, object],
    summary: EmbeddingSummary,
    on_slide_written: Callable[[str], None] | None,
) -> None:
    """Write one slide's file (the request's settings and the grid's as attributes), count it, and report it."""
    write_slide_features(feature_file(folder, slide_id), features, grid_coords(grid), {**grid_settings(grid), **expected})
    summary.embedded.append(slide_id)
    summary.n_tiles += len(grid)
    if on_slide_written is not None:
        on_slide_written(slide_id)


def _embed_locally(
    todo: Mapping[str, Path],
    folder: Path,
    model: Extractor,
    expected: Mapping[str, object],
    summary: EmbeddingSummary,
    batch_size: int,
    num_workers: int,
    progress: bool,
    on_slide_written: Callable[[str], None] | None,
) -> None:
    model.to(summary.device)
    bar = tqdm(todo.items(), desc="slides", unit="slide", disable=not progress)
    for slide_id, path in bar:
        try:
            grid = plan_slide(path, expected)
        except (DataFormatError, ValueError) as error:
            summary.failed[slide_id] = str(error)
            continue
        values = embed_grid(
            model,
            grid,
            batch_size=batch_size,
            num_workers=num_workers,
            device=summary.device,
            progress=progress,
            description=f"{slide_id[:24]} tiles",
        )
        save_slide(slide_id, grid, values, folder, expected, summary, on_slide_written)
        bar.set_postfix(tiles=f"{summary.n_tiles:,}", failed=len(summary.failed))


def _refuse_other_settings(folder: Path, expected: Mapping[str, object]) -> None:
    """Refuse to write into a folder whose files were made with other tile settings (they would be overwritten)."""
    for path in sorted(folder.glob("*.h5"))[:1]:
        try:
            stored = read_slide_features(path).attrs
        except DataFormatError:
            return
        differ = {
            key: (stored.get(key), value) for key, value in expected.items() if key in ("mpp", "tile_px", "min_tissue") and stored.get(key) != value
        }
        if differ:
            described = ", ".join(f"{key} {old} there, {new} now" for key, (old, new) in differ.items())
            raise ValueError(f"{folder} holds features made with other settings ({described}): choose another --out, or delete the folder")
