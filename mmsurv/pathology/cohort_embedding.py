"""A whole cohort's slides to per-slide feature files: the engine behind ``mmsurv embed``.

Every slide with enough tissue is tiled at the requested resolution, each tile is embedded by a
frozen :class:`~mmsurv.pathology.extractors.Extractor`, and the slide's features are written to
``<out>/<extractor>/<slide_id>.h5`` (:mod:`~mmsurv.pathology.feature_files`). Slides whose file
already answers the request are skipped without opening the slide, so a killed run resumes
where it stopped; a slide that cannot be read is named, skipped and counted, and the rest
finish. With ``outlines=True`` (``mmsurv embed --outlines``) each slide's tissue outline is
written beside its features, as GeoJSON that QuPath opens.

Two engines produce the same files (both through one
:class:`~mmsurv.pathology.embedding_job.EmbeddingJob`):

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
from pathlib import Path

from tqdm.auto import tqdm

from ..environment import select_device
from ..io.errors import DataFormatError, DataWarning
from ..io.gdc import read_sample_sheet, sample_files
from .embedding_job import EmbeddingJob, EmbeddingSummary, outline_file, write_slide_outline
from .embeddings import embed_grid
from .extractors import ExtractorSpec
from .feature_files import feature_file, finished_slide, read_slide_features
from .ray_embedding import embed_with_ray

__all__ = ["EmbeddingSummary", "find_slides", "embed_cohort", "ENGINES", "SLIDE_SUFFIXES"]

ENGINES = ("local", "ray")
#: File types searched for when a cohort folder has no GDC sample sheet.
SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".bif")


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
    outlines: bool = False,
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
    outlines : bool, default False
        Also write each slide's tissue outline, the mask its tile grid was laid on, as
        ``<out_dir>/<extractor>/outlines/<slide_id>.geojson`` (QuPath opens it;
        :mod:`~mmsurv.io.tissue_outlines`). Written in the planning step, by either engine, for
        every slide with tiles; a slide skipped as already embedded gets its outline only if
        the file is missing (its thumbnail is read, its tiles are not). The features do not
        change.

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
    job = EmbeddingJob(
        folder, model, expected, summary, batch_size=batch_size, progress=progress, on_slide_written=on_slide_written, outlines=outlines
    )
    todo = {}
    for slide_id, path in slide_paths.items():
        if finished_slide(feature_file(folder, slide_id), expected):
            summary.skipped.append(slide_id)
        else:
            todo[slide_id] = path
    _outline_finished_slides(job, {slide_id: slide_paths[slide_id] for slide_id in summary.skipped})
    if todo and engine == "local":
        summary.device = select_device(device)
        _embed_locally(job, todo, num_workers)
    elif todo:
        embed_with_ray(job, todo, device=device, actors=actors)
    for slide_id, problem in summary.failed.items():
        warnings.warn(f"slide {slide_id} skipped: {problem}", DataWarning, stacklevel=2)
    summary.seconds = time.perf_counter() - started
    return summary


def _embed_locally(job: EmbeddingJob, todo: Mapping[str, Path], num_workers: int) -> None:
    """The local engine: slide after slide in this process, tiles read by ``num_workers`` DataLoader workers."""
    summary = job.summary
    job.extractor.to(summary.device)
    bar = tqdm(todo.items(), desc="slides", unit="slide", disable=not job.progress)
    for slide_id, path in bar:
        try:
            grid = job.plan(slide_id, path)
        except (DataFormatError, ValueError) as error:
            summary.failed[slide_id] = str(error)
            continue
        values = embed_grid(
            job.extractor,
            grid,
            batch_size=job.batch_size,
            num_workers=num_workers,
            device=summary.device,
            progress=job.progress,
            description=f"{slide_id[:24]} tiles",
        )
        job.save(slide_id, grid, values)
        bar.set_postfix(tiles=f"{summary.n_tiles:,}", failed=len(summary.failed))


def _outline_finished_slides(job: EmbeddingJob, finished: Mapping[str, Path]) -> None:
    """Write the missing outlines of slides embedded by an earlier run (a slide that cannot be read now is a failure)."""
    if not job.outlines:
        return
    missing = {slide_id: path for slide_id, path in finished.items() if not outline_file(job.folder, slide_id).is_file()}
    for slide_id, path in tqdm(missing.items(), desc="outlines", unit="slide", leave=False, disable=not job.progress):
        try:
            write_slide_outline(path, outline_file(job.folder, slide_id))
        except (DataFormatError, ValueError) as error:
            job.summary.failed[slide_id] = f"its outline: {error}"


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
