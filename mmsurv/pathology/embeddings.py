"""Per-slide tile embeddings cached on disk, and slides as bags of them for multiple-instance learning.

The cache follows CLAM's layout: ``<cache>/<slide_id>.npz`` holding the features and the tile
coordinates they belong to, written atomically, so a second run is instant and an interrupted
one resumes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..io.slides import TileGrid
from ..io.tiles import TileDataset
from ..training import predict

__all__ = ["embed_slides", "SlideBags"]


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
) -> dict[str, np.ndarray]:
    """Embed every tile of every slide, one cache file per slide; cached slides are not recomputed.

    Each slide's features are written to ``<cache_dir>/<slide_id>.npz`` (``features``,
    ``x``, ``y``) atomically, so an interrupted run resumes where it stopped. A cached file
    whose tile coordinates differ from the grid's (the tiling changed) is recomputed.

    Returns
    -------
    dict slide id -> array (n_tiles, n_features)
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    features = {}
    for slide_id, grid in tqdm(list(zip(slide_ids, grids)), desc="embedding slides", leave=False, disable=not progress):
        path = cache / f"{slide_id}.npz"
        if path.is_file():
            stored = np.load(path)
            if np.array_equal(stored["x"], grid.tiles["x"]) and np.array_equal(stored["y"], grid.tiles["y"]):
                features[slide_id] = stored["features"]
                continue
        loader = DataLoader(TileDataset(grid, uint8=True), batch_size=batch_size, num_workers=num_workers)
        values, order = predict(embed, loader, device=device, progress=False)
        values = values[np.argsort(order)]
        with atomic_path(path) as partial:
            with open(partial, "wb") as handle:
                np.savez(handle, features=values, x=grid.tiles["x"].to_numpy(), y=grid.tiles["y"].to_numpy())
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
