"""``mmsurv embed --engine ray``: the same feature files, computed by Ray across cores, GPUs and machines.

The work is laid out in three stages, each where it belongs:

1. **Plan** (Ray tasks, one CPU each): open every slide and lay its tile grid (and, when asked,
   write its tissue outline: the output folder is shared by every node, as the slides are).
   A slide that cannot be read comes back as a named failure; the others as grids. A task
   gets plain arguments only - paths and settings, never the job or the network.
2. **Read** (Ray Data, CPU tasks): the grids are cut into chunks of neighbouring tiles; each task
   reads and decodes one chunk (strip reads, as the local engine does) into uint8 images.
3. **Embed** (Ray Data, an actor pool): one actor per GPU - or, on a machine without GPUs, half
   the CPU slots, leaving the rest to the readers - builds the extractor once from its
   :class:`~mmsurv.pathology.extractors.ExtractorSpec` (and checks that its weights'
   fingerprint is the driver's) and embeds batches of tiles.

The driver collects the embedded tiles as they stream back and writes a slide's file as soon as
its last tile is in, so a run killed half-way keeps every finished slide, and the next run skips
them. ``ray.init()`` starts Ray on this machine, or joins the cluster named by ``RAY_ADDRESS``
(every node then needs mmsurv installed and the slides at the same path).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..io.errors import DataFormatError
from ..io.slides import TileGrid
from ..io.tiles import TileDataset
from .embedding_job import EmbeddingJob, plan_slide
from .extractors import ExtractorSpec

__all__ = ["embed_with_ray", "CHUNK_TILES"]

#: Tiles per read task: large enough to read whole strips, small enough to stream.
CHUNK_TILES = 256


def _plan(slide_id: str, path: str, expected: dict[str, Any], outline: Path | None) -> tuple[str, TileGrid | None, str]:
    """Plan stage (a Ray task): plain, picklable arguments in, the grid or the reason it failed out."""
    try:
        return slide_id, plan_slide(path, expected, outline), ""
    except (DataFormatError, ValueError) as error:
        return slide_id, None, str(error)


def _chunks(slide_id: str, grid: TileGrid) -> Iterator[dict[str, Any]]:
    """Rows of the read stage: one per chunk of tiles, with what a reader needs to rebuild the grid."""
    tiles = grid.tiles
    for start in range(0, len(tiles), CHUNK_TILES):
        part = tiles.iloc[start : start + CHUNK_TILES]
        yield {
            "slide_id": slide_id,
            "path": str(grid.slide_path),
            "mpp": float(grid.mpp),
            "tile_px": int(grid.tile_px),
            "level": int(grid.level),
            "read_px": int(grid.read_px),
            "slide_mpp": float(grid.slide_mpp),
            "start": start,
            "x": part["x"].tolist(),
            "y": part["y"].tolist(),
            "row": part["row"].tolist(),
            "col": part["col"].tolist(),
        }


def _read_chunks(batch: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """Read stage: decode each chunk's tiles into a uint8 batch (a generator, so chunks stream)."""
    for i in range(len(batch["slide_id"])):
        tiles = pd.DataFrame({key: np.asarray(batch[key][i], dtype=np.int64) for key in ("x", "y", "row", "col")}).assign(tissue_fraction=1.0)
        grid = TileGrid(
            slide_path=Path(str(batch["path"][i])),
            mpp=float(batch["mpp"][i]),
            tile_px=int(batch["tile_px"][i]),
            level=int(batch["level"][i]),
            read_px=int(batch["read_px"][i]),
            tiles=tiles,
            slide_mpp=float(batch["slide_mpp"][i]),
        )
        n = len(tiles)
        error = ""
        try:
            images = np.stack([item["image"].numpy() for item in TileDataset(grid, uint8=True).__getitems__(list(range(n)))])
        except Exception as exc:  # a tile that will not decode fails its slide, not the run
            images = np.zeros((n, 3, grid.tile_px, grid.tile_px), dtype=np.uint8)
            error = f"{grid.slide_path.name}: a tile cannot be read ({type(exc).__name__}: {exc})"
        yield {
            "slide_id": np.array([str(batch["slide_id"][i])] * n, dtype=object),
            "tile": int(batch["start"][i]) + np.arange(n),
            "image": images,
            "error": np.array([error] * n, dtype=object),
        }


def _spread() -> dict[str, str]:
    return {"scheduling_strategy": "SPREAD"}


class _EmbedActor:
    """Embed stage: one extractor per actor, built once from the spec and checked against the driver's fingerprint."""

    def __init__(self, spec: ExtractorSpec, fingerprint: str, device: str) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.model = spec.build().to(device)
        if self.model.fingerprint != fingerprint:
            raise RuntimeError(
                f"this Ray worker built {spec.backbone} with weights {self.model.fingerprint[:8]}, the driver {fingerprint[:8]}: "
                "install the same weights (or the same torchvision cache) on every node"
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..training import autocast_for

        images = self.torch.from_numpy(np.ascontiguousarray(batch["image"])).to(self.device)
        with self.torch.no_grad(), autocast_for(self.device):
            features = self.model(images).float().cpu().numpy()
        return {"slide_id": batch["slide_id"], "tile": batch["tile"], "features": features, "error": batch["error"]}


def embed_with_ray(job: EmbeddingJob, todo: Mapping[str, Path], *, device: str = "auto", actors: int | None = None) -> None:
    """Embed the slides of ``todo`` with Ray, filling ``job.summary`` as slides finish.

    Called by :func:`~mmsurv.pathology.cohort_embedding.embed_cohort` with ``engine="ray"``.

    Parameters
    ----------
    job : EmbeddingJob
        Output folder, extractor, settings, summary, batch size, progress, callback, outlines.
    todo : mapping slide id -> path
        The slides to embed.
    device : str, default "auto"
        ``"auto"``: a GPU per actor when the cluster has GPUs, else CPU actors.
    actors : int, optional
        Backbone actors (default one per GPU, else half the CPUs).
    """
    summary, progress = job.summary, job.progress
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")  # Ray Data's plan and progress lines: our bars say it
    try:
        import ray
    except ImportError as error:
        raise ImportError("the Ray engine needs the scale extra: uv sync --extra scale (or pip install 'mmsurv[scale]')") from error

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)  # joins RAY_ADDRESS when set
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    resources = ray.cluster_resources()
    n_gpus = int(resources.get("GPU", 0))
    use_gpu = device.startswith("cuda") or (device == "auto" and n_gpus > 0)
    if use_gpu and n_gpus == 0:
        raise ValueError(f"device {device!r} asked for, but the Ray cluster has no GPU")
    n_actors = actors or (n_gpus if use_gpu else max(1, int(resources.get("CPU", 2)) // 2))
    summary.device = f"{n_actors} x {'cuda' if use_gpu else 'cpu'} (Ray, {int(resources.get('CPU', 0))} CPUs, {n_gpus} GPUs)"

    plan = ray.remote(num_cpus=1)(_plan)
    pending = [plan.remote(slide_id, str(path), dict(job.expected), job.outline_path(slide_id)) for slide_id, path in todo.items()]
    grids: dict[str, TileGrid] = {}
    with tqdm(total=len(pending), desc="tiling slides", unit="slide", leave=False, disable=not progress) as bar:
        while pending:
            ready, pending = ray.wait(pending, num_returns=min(len(pending), 16), timeout=1.0)
            for slide_id, grid, problem in ray.get(ready):
                if grid is None:
                    summary.failed[slide_id] = problem
                else:
                    grids[slide_id] = grid
            bar.update(len(ready))
    if not grids:
        return
    rows = [row for slide_id, grid in grids.items() for row in _chunks(slide_id, grid)]
    with warnings.catch_warnings():  # ray_remote_args_fn: deprecated in Ray 2.60, removed in 2.64 (hence the pin)
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = (
            ray.data.from_items(rows, override_num_blocks=min(len(rows), 200))
            # readers spread over the nodes; remote arguments given by a function also keep Ray from
            # fusing the readers into the actors, which would leave the backbone waiting on reads
            .map_batches(_read_chunks, batch_size=1, num_cpus=1, ray_remote_args_fn=_spread)
            .map_batches(
                _EmbedActor,
                fn_constructor_kwargs={"spec": job.extractor.spec, "fingerprint": job.extractor.fingerprint, "device": "cuda" if use_gpu else "cpu"},
                batch_size=job.batch_size,
                compute=ray.data.ActorPoolStrategy(size=n_actors),
                num_gpus=1 if use_gpu else 0,
                num_cpus=0 if use_gpu else 1,
            )
        )
    _collect(job, dataset, grids)


def _collect(job: EmbeddingJob, dataset: Any, grids: Mapping[str, TileGrid]) -> None:
    """Gather embedded tiles per slide as they stream in; write each slide once its last tile is back."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {slide_id: [] for slide_id in grids}
    received = dict.fromkeys(grids, 0)
    errors: dict[str, str] = {}
    slide_bar = tqdm(total=len(grids), desc="slides", unit="slide", disable=not job.progress)
    tile_bar = tqdm(total=sum(len(g) for g in grids.values()), desc="tiles", unit="tile", leave=False, disable=not job.progress)
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for slide_id in np.unique(batch["slide_id"]):
            mask = batch["slide_id"] == slide_id
            slide_id = str(slide_id)
            problem = next((str(e) for e in batch["error"][mask] if e), "")
            if problem:
                errors.setdefault(slide_id, problem)
            parts[slide_id].append((batch["tile"][mask], batch["features"][mask]))
            received[slide_id] += int(mask.sum())
            if received[slide_id] < len(grids[slide_id]):
                continue
            if slide_id in errors:
                job.summary.failed[slide_id] = errors[slide_id]
            else:
                tiles = np.concatenate([t for t, _ in parts[slide_id]])
                features = np.concatenate([f for _, f in parts[slide_id]])[np.argsort(tiles, kind="stable")]
                job.save(slide_id, grids[slide_id], features)
            del parts[slide_id]
            slide_bar.update(1)
        tile_bar.update(len(batch["tile"]))
    slide_bar.close()
    tile_bar.close()
