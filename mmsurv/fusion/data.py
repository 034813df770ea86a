"""Multimodal samples from per-modality tables: values, a modality mask and targets.

Each modality is a *block*: a table indexed by sample id with numeric, already preprocessed
columns (scaled genes, one-hot clinical variables, a slide's embedding, a report's text
embedding). Real cohorts never have every block for every patient; here that is normal. A
sample missing from a block's table, or whose row there is all NaN, has that block *masked*:
its values are zero-filled and its mask entry is 0. The model (:class:`MultimodalModel`)
then ignores the zeros. A row with only *some* NaN is an error: impute it in preprocessing,
where the choice is visible, rather than here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

__all__ = ["MultimodalDataset"]


class MultimodalDataset(Dataset):
    """Samples as dicts of per-block tensors plus a modality mask, for :func:`mmsurv.fusion.fit_fusion`.

    Parameters
    ----------
    blocks : mapping of str to DataFrame
        One table per modality, indexed by sample id, numeric columns only. The order of the
        mapping is the order of the mask's columns.
    sample_ids : sequence
        The samples, in the dataset's order.
    targets : array, shape (n,) or (n, 2)
        Class indices (integers) for classification, or ``[time, event]`` rows for Cox.

    Attributes
    ----------
    block_names : tuple of str
    block_features : dict of str to int
        Columns per block: pass it to :class:`mmsurv.fusion.MultimodalModel`.
    mask : ndarray of float32, shape (n, M)
        1 where the sample has the block.
    values : dict of str to ndarray of float32, shape (n, n_features)
        Each block's values in sample order, zeros where the block is masked.
    sample_ids : list
    targets : ndarray
    n_removed : int
        Samples whose block :meth:`with_missing` masked to make this copy (0 otherwise).

    Raises
    ------
    ValueError
        If a block has a non-numeric column or duplicate ids, a row is partly NaN, a sample has
        no block at all, or the targets do not match the samples.

    Notes
    -----
    Items are ``{"inputs": {block: float32 (n_features,), ..., "mask": float32 (M,)},
    "target": tensor, "index": i}``: the target is an int64 scalar (class index) or a float32
    (2,) ``[time, event]``.
    """

    def __init__(self, blocks: Mapping[str, pd.DataFrame], sample_ids: Sequence[Any], targets: np.ndarray) -> None:
        if not blocks:
            raise ValueError("blocks is empty: give at least one table")
        self.sample_ids = list(sample_ids)
        if len(set(self.sample_ids)) != len(self.sample_ids):
            raise ValueError("sample_ids has duplicates")
        self.block_names = tuple(blocks)
        if "mask" in self.block_names:
            raise ValueError("'mask' is reserved for the modality mask and cannot name a block")
        self.values: dict[str, np.ndarray] = {}
        present = []
        for name, table in blocks.items():
            values, has = _block_values(name, table, self.sample_ids)
            self.values[name] = values
            present.append(has)
        self.mask = np.stack(present, axis=1).astype(np.float32) if self.sample_ids else np.zeros((0, len(blocks)), np.float32)
        self.targets = _checked_targets(targets, len(self.sample_ids))
        _check_every_sample_has_a_block(self.mask, self.sample_ids)
        self.n_removed = 0

    @property
    def block_features(self) -> dict[str, int]:
        """Number of columns of each block, in mask order."""
        return {name: self.values[name].shape[1] for name in self.block_names}

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        inputs = {name: torch.from_numpy(self.values[name][i]) for name in self.block_names}
        inputs["mask"] = torch.from_numpy(self.mask[i])
        target = self.targets[i]
        target = torch.tensor(target, dtype=torch.long) if self.targets.ndim == 1 else torch.from_numpy(target)
        return {"inputs": inputs, "target": target, "index": i}

    def subset(self, positions: Sequence[int] | np.ndarray) -> MultimodalDataset:
        """The samples at ``positions`` (integers, in that order), as a new dataset."""
        positions = np.asarray(positions, dtype=int).reshape(-1)
        subset = copy.copy(self)
        subset.sample_ids = [self.sample_ids[p] for p in positions]
        subset.values = {name: values[positions] for name, values in self.values.items()}
        subset.mask, subset.targets, subset.n_removed = self.mask[positions], self.targets[positions], 0
        return subset

    def with_missing(self, block: str | Sequence[str], fraction: float, seed: int = 0) -> MultimodalDataset:
        """A copy where ``block`` is masked (and zero-filled) for a random share of the samples that have it.

        Parameters
        ----------
        block : str or sequence of str
            One block, or several removed together from the same samples - e.g. ``("rna",
            "methylation")``: a patient who was never sequenced at all.
        fraction : float in [0, 1]
            Share of the samples that have (any of) the block(s) to draw; 1.0 draws all of them.
        seed : int, default 0

        Returns
        -------
        MultimodalDataset
            Its ``n_removed`` is the number of samples that actually lost the block(s): a drawn
            sample left with no other block keeps them, since a sample needs one block.
        """
        names = [block] if isinstance(block, str) else list(block)
        unknown = [name for name in names if name not in self.block_names]
        if unknown or not names:
            raise KeyError(f"unknown block(s) {unknown or names!r}: the blocks are {list(self.block_names)}")
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        columns = [self.block_names.index(name) for name in names]
        has = np.flatnonzero(self.mask[:, columns].sum(axis=1) > 0)
        drawn = np.random.default_rng(seed).choice(has, size=int(round(fraction * len(has))), replace=False)
        others = np.delete(self.mask, columns, axis=1).sum(axis=1) > 0
        removed = np.sort(drawn[others[drawn]])
        copied = self.subset(np.arange(len(self)))  # fancy indexing: new arrays
        for column, name in zip(columns, names):
            copied.mask[removed, column] = 0.0
            copied.values[name][removed] = 0.0
        copied.n_removed = len(removed)
        return copied


def _block_values(name: str, table: pd.DataFrame, sample_ids: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The block's values for ``sample_ids`` (float32, zero where missing) and which samples have it."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"block {name!r} must be a DataFrame indexed by sample id, got {type(table).__name__}")
    if table.index.has_duplicates:
        raise ValueError(f"block {name!r} has duplicate sample ids: {list(table.index[table.index.duplicated()][:5])}")
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise ValueError(f"block {name!r} has non-numeric columns {text[:5]}: encode them in preprocessing")
    values = table.reindex(sample_ids).to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    absent = missing.all(axis=1) if values.shape[1] else np.ones(len(sample_ids), bool)
    partial = missing.any(axis=1) & ~absent
    if partial.any():
        shown = [sample_ids[i] for i in np.flatnonzero(partial)[:5]]
        raise ValueError(f"block {name!r}: sample(s) {shown} have some NaN values: impute them in preprocessing (all-NaN rows count as missing)")
    if not np.isfinite(values[~absent]).all():
        raise ValueError(f"block {name!r} has infinite values")
    values[absent] = 0.0
    return values.astype(np.float32), ~absent


def _checked_targets(targets: np.ndarray, n: int) -> np.ndarray:
    targets = np.asarray(targets)
    if len(targets) != n:
        raise ValueError(f"{len(targets)} targets for {n} samples")
    if targets.ndim == 1:
        if not (np.issubdtype(targets.dtype, np.integer) or np.issubdtype(targets.dtype, np.bool_)):
            if not np.all(np.isfinite(targets)) or not np.all(targets == np.round(targets)):
                raise ValueError("1-d targets must be class indices (integers); for Cox give (n, 2) [time, event] rows")
        return targets.astype(np.int64)
    if targets.ndim == 2 and targets.shape[1] == 2:
        targets = targets.astype(np.float32)
        if not np.isfinite(targets).all() or (targets[:, 0] < 0).any() or not np.isin(targets[:, 1], (0.0, 1.0)).all():
            raise ValueError("Cox targets must be (n, 2) rows [time >= 0, event in {0, 1}]")
        return targets
    raise ValueError(f"targets must be (n,) class indices or (n, 2) [time, event], got shape {targets.shape}")


def _check_every_sample_has_a_block(mask: np.ndarray, sample_ids: list[Any]) -> None:
    empty = np.flatnonzero(mask.sum(axis=1) == 0)
    if len(empty):
        shown = [sample_ids[i] for i in empty[:5]]
        raise ValueError(f"sample(s) {shown}{' ...' if len(empty) > 5 else ''} have no modality: at least one block must be present")
