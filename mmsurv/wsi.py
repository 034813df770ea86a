"""Whole-slide pipelines: tile a cohort's slides, aggregate tile predictions, cache embeddings.

These are the steps between the slide reader (:mod:`mmsurv.io.slides`) and a model that every
pathology notebook repeats: one tile grid per slide with at most ``max_tiles`` tiles sampled
from the tissue, a table of all tiles (slide, patient, split), slide-level aggregation of
tile predictions, and per-slide embedding files that make a second run instant (the CLAM
layout: ``<cache>/<slide_id>.npz`` holding features and tile coordinates).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .atomic import atomic_path
from .io.slides import TileGrid, open_slide, tile_grid
from .io.tiles import TileDataset, tile_table
from .training import TrainingHistory, predict

__all__ = ["tile_cohort", "aggregate_tiles", "embed_slides", "SlideBags", "tile_targets", "fit_tile_regressor", "predict_tiles"]


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


def tile_targets(tiles: pd.DataFrame, patient_targets: pd.DataFrame, *, reference: pd.Index) -> np.ndarray:
    """Each tile gets its patient's targets, standardised with the mean and SD of ``reference`` patients.

    Parameters
    ----------
    tiles : DataFrame
        Needs a ``patient_id`` column.
    patient_targets : DataFrame
        Indexed by patient id, one column per target.
    reference : Index
        The training patients: standardising with their statistics only keeps the test
        patients' labels out of training.

    Returns
    -------
    ndarray, shape (n_tiles, n_targets), float32
    """
    reference_values = patient_targets.loc[reference]
    standardised = (patient_targets - reference_values.mean()) / reference_values.std()
    values = standardised.reindex(tiles["patient_id"]).to_numpy(dtype=np.float32)
    if np.isnan(values).any():
        missing = tiles.loc[np.isnan(values).any(axis=1), "patient_id"].unique()[:5]
        raise ValueError(f"tiles of patients without targets: {list(missing)}")
    return values


def fit_tile_regressor(
    dataset: TileDataset,
    tiles: pd.DataFrame,
    targets: np.ndarray,
    *,
    backbone: str = "resnet18",
    pretrained: bool = True,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int = 3,
    num_workers: int = 0,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> tuple[torch.nn.Module, TrainingHistory]:
    """Train a :class:`~mmsurv.models.TileRegressor` on the ``train`` tiles, early-stopped on ``validation``.

    Parameters
    ----------
    dataset : TileDataset
        All tiles (``tiles`` describes them row by row); its images may be preloaded.
    tiles : DataFrame
        Needs a ``split`` column (``train``, ``validation``, ...).
    targets : ndarray, shape (n_tiles, n_targets)
        E.g. from :func:`tile_targets`.
    augment : callable, optional
        Applied to training tiles only.
    seed : int
        Seeds the weights, the order of batches and dropout: the same arguments train the same model.

    Returns
    -------
    (model, history)
        ``history.samples`` holds the row positions (in ``tiles``) of the tiles that trained the
        model (``"train"``) and of those that stopped it early (``"validation"``).
    """
    from torch.utils.data import Subset

    from .environment import seeded_torch
    from .models import TileRegressor
    from .training import train_model

    labelled = dataset.relabelled(targets, uint8=True)
    augmented = dataset.relabelled(targets, transform=augment, uint8=True)
    train_rows = np.flatnonzero(tiles["split"].to_numpy() == "train")
    validation_rows = np.flatnonzero(tiles["split"].to_numpy() == "validation")
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(Subset(augmented, train_rows), batch_size=batch_size, shuffle=True, generator=generator,
                              num_workers=num_workers, pin_memory=str(device).startswith("cuda"))
    validation_loader = DataLoader(Subset(labelled, validation_rows), batch_size=2 * batch_size, num_workers=num_workers)
    with seeded_torch(seed):
        model = TileRegressor(backbone, n_outputs=targets.shape[1], pretrained=pretrained)
    validating = len(validation_rows) > 0
    history = train_model(model, train_loader, validation_loader if validating else None, epochs=epochs,
                          learning_rate=learning_rate, patience=patience, device=device, seed=seed, progress=progress,
                          sample_ids={"train": train_rows, **({"validation": validation_rows} if validating else {})})
    return model, history


def predict_tiles(model: torch.nn.Module, dataset: TileDataset, *, batch_size: int = 128, num_workers: int = 0,
                  device: str = "cpu", progress: bool = True) -> np.ndarray:
    """The model's output for every tile of ``dataset``, in dataset order."""
    plain = dataset.relabelled(uint8=True)
    values, order = predict(model, DataLoader(plain, batch_size=batch_size, num_workers=num_workers), device=device, progress=progress)
    return values[np.argsort(order)]
