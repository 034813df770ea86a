"""A PyTorch dataset of tumour cubes with 3D augmentation.

Augmentation, as in Hosny et al. (2018): random flips along each axis, random 90-degree
rotations in the axial plane, and random shifts of a few millimetres (a random crop of the
cube inside its stored margin). Evaluation takes the central crop and nothing else, so the
same scan always gives the same prediction.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["CubeDataset", "augment_cube", "centre_crop"]


def centre_crop(cube: np.ndarray, side: int) -> np.ndarray:
    """The central ``side``-voxel cube of a larger cube (or of a batch of cubes, last three axes)."""
    start = (cube.shape[-1] - side) // 2
    return cube[..., start : start + side, start : start + side, start : start + side]


def augment_cube(cube: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A randomly shifted ``side``-voxel crop, flipped and rotated by multiples of 90 degrees.

    Parameters
    ----------
    cube : array, shape (s, s, s) with s >= side
        Axes (slice, row, column); the margin ``(s - side) / 2`` bounds the shift.
    side : int
    rng : numpy Generator

    Returns
    -------
    array, shape (side, side, side)
    """
    spare = cube.shape[-1] - side
    k, i, j = rng.integers(0, spare + 1, size=3)
    crop = cube[k : k + side, i : i + side, j : j + side]
    for axis in range(3):
        if rng.random() < 0.5:
            crop = np.flip(crop, axis=axis)
    crop = np.rot90(crop, k=int(rng.integers(0, 4)), axes=(1, 2))  # in the axial plane, where voxels are alike
    return np.ascontiguousarray(crop)


class CubeDataset(Dataset):
    """Tumour cubes and labels as dict batches for :func:`mmsurv.training.train_model`.

    Parameters
    ----------
    cubes : float32 array, shape (n, s, s, s)
        E.g. :attr:`mmsurv.radiology.ct_cubes.TumourCubes.cubes`.
    targets : array, shape (n,)
        Class labels (0/1); use ``-1`` or anything for unlabelled data that is only predicted.
    side : int
        Voxels per side of what the model sees (``CubeSettings.cube_voxels``).
    augment : bool, default False
        Random shift, flips and rotations (training only).
    seed : int, default 0
        Seeds the augmentation; each epoch and each DataLoader worker draws new variations.

    Items are ``{"image": (1, side, side, side) float tensor, "target": int, "index": int}``.
    """

    def __init__(self, cubes: np.ndarray, targets: np.ndarray, side: int, *, augment: bool = False, seed: int = 0) -> None:
        if cubes.ndim != 4 or cubes.shape[-1] < side:
            raise ValueError(f"cubes must be (n, s, s, s) with s >= {side}, got shape {cubes.shape}")
        if len(targets) != len(cubes):
            raise ValueError(f"{len(targets)} targets for {len(cubes)} cubes")
        self.cubes = cubes
        self.targets = np.asarray(targets)
        self.side = side
        self.augment = augment
        self.seed = seed
        self._draws = 0

    def __len__(self) -> int:
        return len(self.cubes)

    def __getitem__(self, index: int) -> dict[str, object]:
        if self.augment:
            self._draws += 1
            info = torch.utils.data.get_worker_info()
            rng = np.random.default_rng((self.seed, index, self._draws, info.id if info else 0))
            cube = augment_cube(self.cubes[index], self.side, rng)
        else:
            cube = centre_crop(self.cubes[index], self.side)
        return {"image": torch.from_numpy(np.ascontiguousarray(cube, dtype=np.float32))[None], "target": int(self.targets[index]), "index": index}
