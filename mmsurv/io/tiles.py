"""Tiles of whole-slide images as a PyTorch ``Dataset``, read lazily and in strips.

Nothing is read when the dataset is built: each tile is read from its slide when a
``DataLoader`` asks for it, in whichever worker process asks. Slide handles are opened per
process (OpenSlide handles cannot cross a ``fork``) and kept open.

Batched reads: PyTorch's ``DataLoader`` hands a whole batch of indices to
``Dataset.__getitems__`` when a dataset defines it. When those indices are neighbouring tiles
of one slide row - as they are when embedding every tile in order - we read the whole strip
with one ``read_region`` call and cut it up, instead of one call per tile. With a shuffled
sampler the batch falls back to one read per tile. ``benchmarks/tiling.py`` measures both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

from .slides import Slide, TileGrid, open_slide

__all__ = ["TileDataset", "tile_table"]


def tile_table(grids: Sequence[TileGrid], slide_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Stack the tiles of several slides into one table with a ``slide`` column (index into ``grids``)."""
    frames = []
    for index, grid in enumerate(grids):
        frame = grid.tiles.copy()
        frame.insert(0, "slide", index)
        frame.insert(1, "slide_id", slide_ids[index] if slide_ids is not None else grid.slide_path.stem)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["slide", "slide_id", "x", "y", "row", "col", "tissue_fraction"])
    return pd.concat(frames, ignore_index=True)


class TileDataset(Dataset):
    """Tiles from one or more slides, each returned as a float tensor in [0, 1].

    Parameters
    ----------
    grids : TileGrid or sequence of TileGrid
        Tile grids made by :func:`mmsurv.io.slides.tile_grid` (one per slide).
    targets : array-like, optional
        One target per tile (e.g. the slide's label repeated on each of its tiles).
    transform : callable, optional
        Applied to each ``(3, H, W)`` tensor (e.g. torchvision augmentations).
    backend : {"auto", "openslide", "tiffslide"}, default "auto"
        See :func:`mmsurv.io.slides.open_slide`.
    max_strip : int, default 16
        Longest run of neighbouring tiles read with a single ``read_region`` call.
    uint8 : bool, default False
        Return uint8 images (0-255) instead of float32 in [0, 1]: a quarter of the bytes to
        move between processes and onto a GPU, converted there with ``.float() / 255``.

    Each item is a dict: ``image`` (3 x tile_px x tile_px tensor), ``index`` (the tile's row
    in :attr:`tiles`) and, when ``targets`` were given, ``target``.
    """

    def __init__(
        self,
        grids: TileGrid | Sequence[TileGrid],
        *,
        targets: Sequence[float] | np.ndarray | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        backend: str = "auto",
        max_strip: int = 16,
        uint8: bool = False,
    ) -> None:
        self.grids = [grids] if isinstance(grids, TileGrid) else list(grids)
        self.tiles = tile_table(self.grids)
        if targets is not None:
            targets = np.asarray(targets, dtype=np.float32)
            if len(targets) != len(self.tiles):
                raise ValueError(f"targets has {len(targets)} entries for {len(self.tiles)} tiles")
        self.targets = targets
        self.transform = transform
        self.backend = backend
        self.max_strip = max(1, int(max_strip))
        self.uint8 = uint8
        self._columns = {name: self.tiles[name].to_numpy() for name in ("slide", "x", "y", "row", "col")}
        self._open: dict[int, Slide] = {}
        self._pid = os.getpid()
        self._preloaded: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.tiles)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without open slide handles (DataLoader workers started by ``spawn`` open their own)."""
        state = dict(self.__dict__)
        state["_open"] = {}
        return state

    def close(self) -> None:
        """Close the slide files this process opened (they reopen on the next read)."""
        for slide in self._open.values():
            slide.close()
        self._open = {}

    def _slide(self, index: int) -> Slide:
        if os.getpid() != self._pid:  # a forked DataLoader worker: open our own handles
            self._open, self._pid = {}, os.getpid()
        if index not in self._open:
            grid = self.grids[index]
            self._open[index] = open_slide(grid.slide_path, backend=self.backend, mpp=grid.slide_mpp)
        return self._open[index]

    def preload(self, *, batch_size: int = 256, progress: bool = True) -> TileDataset:
        """Read every tile once into memory (uint8), for small experiments that revisit tiles each epoch.

        Costs ``len(self) * 3 * tile_px**2`` bytes (2,880 tiles of 64 px: 35 MB). Returns self.
        """
        from tqdm.auto import tqdm

        keep_transform, keep_uint8 = self.transform, self.uint8
        self.transform, self.uint8 = None, True
        try:
            chunks = [
                torch.stack([item["image"] for item in self.__getitems__(list(range(start, min(start + batch_size, len(self)))))])
                for start in tqdm(range(0, len(self), batch_size), desc="reading tiles", leave=False, disable=not progress)
            ]
        finally:
            self.transform, self.uint8 = keep_transform, keep_uint8
        self._preloaded = torch.cat(chunks) if chunks else None
        return self

    def relabelled(
        self,
        targets: Sequence[float] | np.ndarray | None = None,
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        uint8: bool | None = None,
    ) -> TileDataset:
        """The same tiles with other targets / transform, sharing preloaded images (no copy)."""
        twin = TileDataset(
            self.grids,
            targets=targets,
            transform=transform,
            backend=self.backend,
            max_strip=self.max_strip,
            uint8=self.uint8 if uint8 is None else uint8,
        )
        twin._preloaded = self._preloaded
        return twin

    def _item(self, index: int, pixels: np.ndarray | None) -> dict[str, Any]:
        if pixels is None:  # preloaded
            image = self._preloaded[index]
        else:
            grid = self.grids[self._columns["slide"][index]]
            if pixels.shape[0] != grid.tile_px:
                pixels = np.asarray(Image.fromarray(pixels).resize((grid.tile_px, grid.tile_px), Image.Resampling.BILINEAR))
            image = torch.from_numpy(np.require(pixels, requirements=["C", "W"])).permute(2, 0, 1)
        if not self.uint8:
            image = image.float().div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        item: dict[str, Any] = {"image": image, "index": index}
        if self.targets is not None:
            item["target"] = torch.tensor(self.targets[index])
        return item

    def read_tile(self, index: int) -> np.ndarray:
        """RGB pixels of one tile as stored (``read_px`` square), uint8."""
        grid = self.grids[self._columns["slide"][index]]
        x, y = self._columns["x"][index], self._columns["y"][index]
        return self._slide(self._columns["slide"][index]).read_region(x, y, grid.level, grid.read_px, grid.read_px)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._preloaded is not None:
            return self._item(int(index), None)
        return self._item(int(index), self.read_tile(int(index)))

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Read a batch, merging runs of horizontally adjacent tiles into strip reads.

        A strip is cut where each tile starts, so it returns exactly the pixels of single reads.
        On most scans a tile is not a whole number of level-0 pixels wide (224 px at 0.5 um/px
        from a 0.499 um/px scan is 224.449 px), so tiles do not sit at multiples of ``read_px``
        along a strip; and on a level above 0 a tile whose offset from the strip's start is not a
        whole number of that level's pixels would be cut a fraction of a pixel away from where a
        single read starts: such a tile begins a new strip.
        """
        indices = [int(i) for i in indices]
        if self._preloaded is not None:
            return [self._item(i, None) for i in indices]
        slide, row, col, xs = self._columns["slide"], self._columns["row"], self._columns["col"], self._columns["x"]
        items: list[dict[str, Any]] = []
        start = 0
        while start < len(indices):
            first = indices[start]
            grid = self.grids[slide[first]]
            downsample = self._slide(slide[first]).level_downsamples[grid.level]
            offsets = [0]  # where each tile of the run starts in the strip, in pixels of grid.level
            end = start + 1
            while (
                end < len(indices)
                and end - start < self.max_strip
                and slide[indices[end]] == slide[first]
                and row[indices[end]] == row[first]
                and col[indices[end]] == col[indices[end - 1]] + 1
            ):
                offset = (xs[indices[end]] - xs[first]) / downsample
                if abs(offset - round(offset)) > 1e-9:
                    break
                offsets.append(int(round(offset)))
                end += 1
            run = indices[start:end]
            if len(run) == 1:
                items.append(self[first])
            else:
                strip = self._slide(slide[first]).read_region(
                    xs[first], self._columns["y"][first], grid.level, offsets[-1] + grid.read_px, grid.read_px
                )
                for offset, index in zip(offsets, run):
                    items.append(self._item(index, strip[:, offset : offset + grid.read_px]))
            start = end
        return items
