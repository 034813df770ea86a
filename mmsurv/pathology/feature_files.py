"""Per-slide feature files: one HDF5 file per slide, in the layout CLAM and TRIDENT use.

``<features_dir>/<extractor>/<slide_id>.h5`` holds two datasets and the settings that made them:

``features``
    float32, (n_tiles, n_features): one embedding per tile.
``coords``
    int64, (n_tiles, 2): each tile's top-left corner (x, y) in level-0 pixels of the slide.
attributes
    ``mpp``, ``tile_px``, ``min_tissue``, ``level``, ``read_px``, ``extractor``,
    ``weights_fingerprint``, ``slide_file``, ``format_version`` (and whatever else the writer
    passed): enough to tell whether a file answers a request without opening the slide.

Files are written atomically (a temporary name, then a rename), so a folder never holds a
half-written slide: an interrupted run leaves only whole files, and the next run skips them.
``mmsurv embed`` and the notebooks' embedding caches (:func:`~mmsurv.pathology.embed_slides`)
write the same files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..atomic import atomic_path
from ..io.errors import DataFormatError

__all__ = ["SlideFeatures", "FORMAT_VERSION", "feature_file", "write_slide_features", "read_slide_features", "finished_slide", "load_feature_folder"]

#: Bumped when the layout changes; files of another version are recomputed, never misread.
FORMAT_VERSION = 1


@dataclass
class SlideFeatures:
    """One slide's tile embeddings, the tiles' coordinates and the settings that made them."""

    features: np.ndarray
    coords: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.features)


def feature_file(folder: str | os.PathLike, slide_id: str) -> Path:
    """Where a slide's features live: ``<folder>/<slide_id>.h5``."""
    return Path(folder) / f"{slide_id}.h5"


def write_slide_features(path: str | os.PathLike, features: np.ndarray, coords: np.ndarray, attrs: Mapping[str, Any] | None = None) -> Path:
    """Write one slide's features atomically.

    Parameters
    ----------
    path : path-like
        The ``.h5`` file; its folder is created.
    features : array (n_tiles, n_features)
    coords : array (n_tiles, 2)
        Level-0 (x, y) of each tile's top-left corner.
    attrs : mapping, optional
        Settings stored as HDF5 attributes (numbers and strings).

    Returns
    -------
    Path
    """
    features = np.asarray(features, dtype=np.float32)
    coords = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
    if len(features) != len(coords):
        raise ValueError(f"{len(features)} feature rows for {len(coords)} tile coordinates")
    path = Path(path)
    with atomic_path(path) as partial:
        with h5py.File(partial, "w") as handle:
            handle.create_dataset("features", data=features)
            handle.create_dataset("coords", data=coords)
            handle.attrs["format_version"] = FORMAT_VERSION
            for key, value in (attrs or {}).items():
                handle.attrs[key] = value
    return path


def read_slide_features(path: str | os.PathLike) -> SlideFeatures:
    """Read one slide's features.

    Raises
    ------
    DataFormatError
        The file is missing, not HDF5 (truncated or overwritten), or lacks ``features`` / ``coords``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "no such feature file")
    try:
        with h5py.File(path, "r") as handle:
            missing = [name for name in ("features", "coords") if name not in handle]
            if missing:
                raise DataFormatError(path, f"not a slide feature file: no {' or '.join(missing)} dataset")
            return SlideFeatures(features=handle["features"][()], coords=handle["coords"][()], attrs=_plain(dict(handle.attrs)))
    except OSError as error:
        raise DataFormatError(path, f"cannot be read as HDF5 ({error}); truncated or corrupt? delete it and embed again") from error


def finished_slide(path: str | os.PathLike, expected: Mapping[str, Any], coords: np.ndarray | None = None) -> bool:
    """Whether ``path`` already answers a request: it reads, and its attributes (and coords) match.

    Parameters
    ----------
    path : path-like
    expected : mapping
        Attributes that must be equal (floats compared to 1e-9), e.g. the tile settings and the
        weights' fingerprint. The format version is always compared.
    coords : array (n_tiles, 2), optional
        When given, the stored tile coordinates must be exactly these.
    """
    wanted = {"format_version": FORMAT_VERSION, **expected}
    try:  # attributes (and coordinates) only: a resumed run must not read every finished slide's features
        with h5py.File(path, "r") as handle:
            if "features" not in handle or "coords" not in handle:
                return False
            attrs = _plain(dict(handle.attrs))
            if any(key not in attrs or not _same(attrs[key], value) for key, value in wanted.items()):
                return False
            return coords is None or np.array_equal(handle["coords"][()], np.asarray(coords).reshape(-1, 2))
    except OSError:  # missing, truncated or not HDF5
        return False


def load_feature_folder(folder: str | os.PathLike, slide_ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The features of many slides from one extractor's folder, by slide id (file name without ``.h5``).

    Parameters
    ----------
    folder : path-like
        ``<features_dir>/<extractor>``, as ``mmsurv embed`` writes it.
    slide_ids : iterable of str, optional
        Default: every ``.h5`` file in the folder.

    Raises
    ------
    DataFormatError
        A requested slide has no readable file (the message names it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, "no such feature folder (run `mmsurv embed` first)")
    ids = sorted(p.stem for p in folder.glob("*.h5")) if slide_ids is None else list(slide_ids)
    return {slide_id: read_slide_features(feature_file(folder, slide_id)).features for slide_id in ids}


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    """HDF5 attributes as plain Python values (numpy scalars and bytes to numbers and str)."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(wanted, float) or isinstance(stored, float):
        try:
            return abs(float(stored) - float(wanted)) <= 1e-9
        except (TypeError, ValueError):
            return False
    return stored == wanted
