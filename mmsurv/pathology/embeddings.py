"""Per-slide tile embeddings cached on disk, and slides as bags of them for multiple-instance learning.

The cache is CLAM's layout, in the format of :mod:`mmsurv.pathology.feature_files`:
``<cache>/<slide_id>.h5`` holding the features and the tile coordinates they belong to, written
atomically, so a second run is instant and an interrupted one resumes. ``mmsurv embed`` writes
the same files for a whole cohort (:mod:`mmsurv.pathology.cohort_embedding`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..io.slides import TileGrid
from ..io.tiles import TileDataset
from ..training import predict
from .feature_files import feature_file, finished_slide, read_slide_features, write_slide_features

__all__ = ["embed_slides", "embed_grid", "grid_settings", "grid_coords", "SlideBags"]


def embed_grid(
    embed: Callable[[torch.Tensor], torch.Tensor],
    grid: TileGrid,
    *,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str = "cpu",
    progress: bool = False,
    description: str = "tiles",
) -> np.ndarray:
    """Embed every tile of one grid, in the grid's order; returns (n_tiles, n_features) float32.

    Tiles are read in order, so neighbouring tiles of a row are read as one strip
    (:class:`~mmsurv.io.tiles.TileDataset`), and handed to ``embed`` as uint8 batches turned
    into [0, 1] floats on ``device``.
    """
    loader = DataLoader(TileDataset(grid, uint8=True), batch_size=batch_size, num_workers=num_workers)
    values, order = predict(embed, loader, device=device, progress=progress, description=description)
    return values[np.argsort(order)].astype(np.float32, copy=False)


def grid_settings(grid: TileGrid) -> dict[str, object]:
    """The tiling settings a feature file records: microns per pixel, tile size, level read, and the slide's file name."""
    return {
        "mpp": float(grid.mpp),
        "tile_px": int(grid.tile_px),
        "level": int(grid.level),
        "read_px": int(grid.read_px),
        "slide_file": Path(grid.slide_path).name,
    }


def grid_coords(grid: TileGrid) -> np.ndarray:
    """(n_tiles, 2) level-0 (x, y) of a grid's tiles."""
    return np.column_stack([grid.tiles["x"].to_numpy(np.int64), grid.tiles["y"].to_numpy(np.int64)])


def embed_slides(
    embed: Callable[[torch.Tensor], torch.Tensor],
    grids: list[TileGrid],
    slide_ids: list[str],
    cache_dir: str | os.PathLike,
    *,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str = "cpu",
    progress: bool = True,
    attrs: Mapping[str, object] | None = None,
) -> dict[str, np.ndarray]:
    """Embed every tile of every slide, one cache file per slide; cached slides are not recomputed.

    Each slide's features are written to ``<cache_dir>/<slide_id>.h5`` (``features``, ``coords``
    and the tiling settings as attributes; see :mod:`mmsurv.pathology.feature_files`)
    atomically, so an interrupted run resumes where it stopped. A cached file whose tile
    coordinates or settings differ from the grid's (the tiling changed) is recomputed.

    Parameters
    ----------
    embed : callable
        Image batch (B, 3, H, W) in [0, 1] -> features (B, n_features), e.g. ``model.embed``.
    grids, slide_ids : lists of the same length
    cache_dir : path-like
        Name it after the weights (e.g. with :func:`~mmsurv.training.model_fingerprint`):
        the files do not know which network made them unless ``attrs`` says so.
    attrs : mapping, optional
        More attributes to store and to require of cached files (e.g. a weights fingerprint).

    Returns
    -------
    dict slide id -> array (n_tiles, n_features)
    """
    features = {}
    for slide_id, grid in tqdm(list(zip(slide_ids, grids)), desc="embedding slides", leave=False, disable=not progress):
        path = feature_file(cache_dir, slide_id)
        settings = {**grid_settings(grid), **(attrs or {})}
        if finished_slide(path, settings, coords=grid_coords(grid)):
            features[slide_id] = read_slide_features(path).features
            continue
        values = embed_grid(embed, grid, batch_size=batch_size, num_workers=num_workers, device=device)
        write_slide_features(path, values, grid_coords(grid), settings)
        features[slide_id] = values
    return features


class SlideBags(Dataset):
    """Slides as bags of tile embeddings, for multiple-instance learning (batch size 1).

    Items are dicts: ``image`` (n_tiles x n_features tensor - called "image" so the shared
    training loop treats bags like images), ``target`` and ``index`` (the slide's position).
    """

    def __init__(self, features: Mapping[str, np.ndarray], slide_ids: list[str], targets: np.ndarray) -> None:
        self.bags = [torch.as_tensor(features[s], dtype=torch.float32) for s in slide_ids]
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.float32))
        if len(self.targets) != len(self.bags):
            raise ValueError(f"{len(self.targets)} targets for {len(self.bags)} slides")

    def __len__(self) -> int:
        return len(self.bags)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        return {"image": self.bags[index], "target": self.targets[index], "index": index}
