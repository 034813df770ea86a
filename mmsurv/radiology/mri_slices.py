"""Pelvic MRI to network input: 2.5D slices around the tumour at two scales, T2 and diffusion as channels.

The multi-scale recipe of notebook 05, step by step:

1. **Normalise inside the body** (:func:`mmsurv.io.volumes.normalise_mri`), so that scanners
   with different gains give comparable intensities: the T2 image by the body's median and IQR
   (``"robust"``); the diffusion image, whose body is nearly uniform, relative to the body's median
   (``"ratio"``: its IQR would measure the scanner's noise, and noisier centres would look darker).
   Both use the body mask of the T2 image.
2. **Find the tumour's largest axial cross-section** in the mask, and take ``n_slices`` slices
   centred on it (2.5D: some through-plane context at the cost of a 2D network).
3. **Resample and crop at two scales** around the tumour's centre in that slice: a tight
   tumour crop (``tumour_mm`` wide) and a wider pelvic context (``context_mm``), each onto a
   ``size_px`` grid - the resampling puts every centre's in-plane resolution on one grid.
4. Stack **T2 and diffusion as channels** (``2 * n_slices``); a patient without a diffusion
   sequence gets zeros there and ``has_dwi = False`` (the networks see the zeros; the fusion
   layer sees the flag).

:func:`prepare_mri_inputs` does this for a cohort, with a progress bar and an atomic on-disk
cache keyed by the settings.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..io.errors import DataFormatError
from ..io.mri_study import read_sequence
from ..io.volumes import Volume, body_mask, normalise_mri

__all__ = ["MriInputs", "slice_stack", "prepare_mri_inputs", "MriSliceDataset"]


@dataclass
class MriInputs:
    """Network inputs for a cohort.

    Attributes
    ----------
    patient_ids : list of str
    tumour, context : ndarray of float32, shape (n, 2 * n_slices, size_px, size_px)
        The tight crop and the wide crop; channels are T2 slices then diffusion slices.
    masks : ndarray of bool, shape (n, 2, size_px, size_px)
        The tumour mask on the central slice of each scale (tumour crop, context crop).
    has_dwi : ndarray of bool, shape (n,)
    settings : dict
    """

    patient_ids: list[str]
    tumour: np.ndarray
    context: np.ndarray
    masks: np.ndarray
    has_dwi: np.ndarray
    settings: dict[str, Any]

    def subset(self, ids: Sequence[str]) -> MriInputs:
        """The inputs of ``ids``, in that order."""
        position = {p: i for i, p in enumerate(self.patient_ids)}
        rows = [position[p] for p in ids]
        return MriInputs(list(ids), self.tumour[rows], self.context[rows], self.masks[rows], self.has_dwi[rows], self.settings)


def _crop(array: np.ndarray, centre_px: np.ndarray, pixel_mm: float, field_mm: float, size_px: int, order: int) -> np.ndarray:
    """Resample ``array`` (slices, rows, cols) onto a ``size_px`` square grid ``field_mm`` wide around ``centre_px``."""
    step = field_mm / size_px / pixel_mm  # source pixels per output pixel
    offsets = (np.arange(size_px) - (size_px - 1) / 2) * step
    rows, cols = np.meshgrid(centre_px[0] + offsets, centre_px[1] + offsets, indexing="ij")
    return np.stack([ndimage.map_coordinates(s, [rows, cols], order=order, mode="constant", cval=0.0) for s in array])


def slice_stack(
    t2: Volume,
    dwi: Volume | None,
    mask: Volume,
    *,
    n_slices: int = 3,
    tumour_mm: float = 72.0,
    context_mm: float = 160.0,
    size_px: int = 32,
) -> dict[str, np.ndarray]:
    """One patient's two-scale 2.5D input (steps 1-4 of the module docstring).

    Returns
    -------
    dict
        ``tumour`` and ``context`` (2 * n_slices, size_px, size_px) float32, ``masks``
        (2, size_px, size_px) bool, ``has_dwi`` bool.

    Raises
    ------
    ValueError
        If the mask is empty or not on the T2 grid, or the diffusion image is on another grid.
    """
    where = t2.metadata.get("file", "T2 image")
    if mask.shape != t2.shape:
        raise ValueError(f"{where}: the tumour mask has shape {mask.shape}, the T2 image {t2.shape}; resample the mask onto the T2 grid")
    if dwi is not None and dwi.shape != t2.shape:
        raise ValueError(f"{where}: the diffusion image has shape {dwi.shape}, the T2 image {t2.shape}; register it to the T2 grid first")
    tumour = mask.array > 0
    if not tumour.any():
        raise ValueError(f"{where}: the tumour mask is empty")
    body = body_mask(t2.array) | tumour
    t2n = normalise_mri(t2, body, method="robust").array
    dwin = normalise_mri(dwi, body, method="ratio").array if dwi is not None else np.zeros_like(t2n)
    largest = int(np.argmax(tumour.sum(axis=(1, 2))))
    half = n_slices // 2
    chosen = np.clip(np.arange(largest - half, largest - half + n_slices), 0, t2.shape[0] - 1)
    centre = np.array(ndimage.center_of_mass(tumour[largest]))
    pixel_mm = float(t2.spacing[1])
    out: dict[str, Any] = {"has_dwi": dwi is not None}
    masks = []
    for scale, field in (("tumour", tumour_mm), ("context", context_mm)):
        images = np.concatenate([t2n[chosen], dwin[chosen]])
        out[scale] = _crop(images, centre, pixel_mm, field, size_px, order=1).astype(np.float32)
        masks.append(_crop(tumour[[largest]].astype(np.float32), centre, pixel_mm, field, size_px, order=1)[0] > 0.5)
    out["masks"] = np.stack(masks)
    return out


def _cache_key(files: Mapping[str, Mapping[str, str | None]], settings: dict[str, Any]) -> str:
    listing = {p: {k: (v, os.path.getsize(v) if v and os.path.isfile(v) else None) for k, v in f.items()} for p, f in files.items()}
    return hashlib.sha256(json.dumps([listing, settings], sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_mri_inputs(
    files: Mapping[str, Mapping[str, str | None]],
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    **settings: Any,
) -> MriInputs:
    """Two-scale 2.5D inputs for every patient with a T2 image and a tumour mask.

    Parameters
    ----------
    files : mapping of patient id to ``{"t2w": path, "dwi": path or None, "tumour_mask": path}``
        E.g. ``study.files.to_dict("index")`` from :func:`mmsurv.io.mri_study.read_mri_study`;
        patients without ``t2w`` or ``tumour_mask`` are left out (their image modality is missing).
    cache_dir : path-like, optional
        Where the inputs are cached (one ``.npz`` per set of files and settings, written
        atomically); a second call with the same files and settings reads it back.
    progress : bool, default True
    **settings
        ``n_slices``, ``tumour_mm``, ``context_mm``, ``size_px`` of :func:`slice_stack`.

    Returns
    -------
    MriInputs

    Raises
    ------
    DataFormatError
        A volume that cannot be read, or whose mask is empty or off its grid (the file is named).
    """
    usable = {p: f for p, f in files.items() if f.get("t2w") and f.get("tumour_mask")}
    if not usable:
        raise ValueError("no patient has both a T2 image and a tumour mask")
    cache = Path(cache_dir) / f"mri_inputs_{_cache_key(usable, settings)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        return MriInputs(list(stored["patient_ids"]), stored["tumour"], stored["context"], stored["masks"], stored["has_dwi"], dict(settings))
    rows = []
    for patient, paths in tqdm(usable.items(), desc="MRI: normalise, crop", leave=False, disable=not progress):
        try:
            t2, mask = read_sequence(paths["t2w"]), read_sequence(paths["tumour_mask"])
            dwi = read_sequence(paths["dwi"]) if paths.get("dwi") else None
            rows.append(slice_stack(t2, dwi, mask, **settings))
        except ValueError as error:
            if isinstance(error, DataFormatError):
                raise
            raise DataFormatError(paths["t2w"], f"patient {patient}: {error}") from error
    inputs = MriInputs(
        list(usable),
        np.stack([r["tumour"] for r in rows]),
        np.stack([r["context"] for r in rows]),
        np.stack([r["masks"] for r in rows]),
        np.array([r["has_dwi"] for r in rows]),
        dict(settings),
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as partial, open(partial, "wb") as handle:
            np.savez(handle, patient_ids=np.array(inputs.patient_ids), tumour=inputs.tumour, context=inputs.context, masks=inputs.masks,
                     has_dwi=inputs.has_dwi)  # fmt: skip
    return inputs


class MriSliceDataset(Dataset):
    """Batches ``{"inputs": {"tumour", "context"}, "target", "index"}`` for :func:`mmsurv.training.train_model`.

    Parameters
    ----------
    inputs : MriInputs
    targets : array of shape (n,)
        0 / 1 labels (or anything :func:`mmsurv.training.train_model`'s loss takes).
    augment : bool, default False
        Random flips and 90-degree rotations in-plane, the same for both scales (training only).
    seed : int, default 0
    """

    def __init__(self, inputs: MriInputs, targets: np.ndarray, *, augment: bool = False, seed: int = 0) -> None:
        if len(targets) != len(inputs.patient_ids):
            raise ValueError(f"{len(targets)} targets for {len(inputs.patient_ids)} patients")
        self.inputs, self.targets, self.augment = inputs, np.asarray(targets, dtype=np.float32), augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> dict[str, Any]:
        tumour, context = self.inputs.tumour[i], self.inputs.context[i]
        if self.augment:
            k, flip = int(self.rng.integers(4)), bool(self.rng.integers(2))
            tumour, context = (np.rot90(a, k, axes=(1, 2)) for a in (tumour, context))
            if flip:
                tumour, context = tumour[:, :, ::-1], context[:, :, ::-1]
        inputs = {"tumour": torch.from_numpy(np.ascontiguousarray(tumour)), "context": torch.from_numpy(np.ascontiguousarray(context))}
        return {"inputs": inputs, "target": torch.tensor(self.targets[i]), "index": i}
