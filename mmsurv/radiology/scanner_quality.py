"""How clean each centre's scans are, measured from the images themselves.

A model validated on another hospital is judged partly by that hospital's scanner: a centre
with less noise and finer pixels is an easier test than the centres the model trained on. Before
reading "external AUC above internal AUC" as transfer, measure the scanners. :func:`relative_noise`
estimates the noise of one volume from the differences of neighbouring voxels inside the body
(robust to the organs' edges), as a share of the body's median signal, so it does not depend on
the scanner's gain; :func:`scan_quality_by_centre` summarises a sample of patients per centre.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import ndimage

from ..io.mri_study import read_sequence

__all__ = ["relative_noise", "scan_quality_by_centre"]


def relative_noise(array: np.ndarray, *, body_fraction: float = 0.2, erode: int = 2) -> float:
    """Noise standard deviation inside the body, as a share of the body's median intensity.

    Parameters
    ----------
    array : ndarray, shape (slices, rows, columns)
        One MRI volume (any gain).
    body_fraction : float, default 0.2
        Voxels above this share of the volume's 95th percentile count as body.
    erode : int, default 2
        In-plane erosion of the body mask (voxels), so that the body's outline does not count.

    Returns
    -------
    float
        ``sd(d) / sqrt(2) / median(body)``, with ``d`` the differences of neighbouring voxels
        along the rows inside the eroded body, kept within 4 robust spreads (``1.4826 * MAD``)
        of their median: for white noise of standard deviation ``s`` on a piecewise-smooth
        signal, ``d`` has standard deviation ``s * sqrt(2)``, and the few large differences at
        the organs' edges fall outside the window.

    Notes
    -----
    The noise of a magnitude image is Rician, close to Gaussian where the signal is well above
    the noise (inside the body); outside the body it is not, which is why the air is left out.
    """
    array = np.asarray(array, dtype=float)
    if array.ndim != 3:
        raise ValueError(f"expected a 3D volume, got shape {array.shape}")
    body = array > body_fraction * np.percentile(array, 95)
    if erode:
        body = ndimage.binary_erosion(body, structure=np.ones((1, 2 * erode + 1, 2 * erode + 1), bool))
    pairs = body[:, :, 1:] & body[:, :, :-1]
    if pairs.sum() < 100:
        raise ValueError("fewer than 100 voxel pairs inside the body: cannot measure the noise")
    differences = np.diff(array, axis=2)[pairs]
    centred = differences - np.median(differences)
    robust = 1.4826 * np.median(np.abs(centred))  # the spread of d, blind to the organs' edges
    # MAD of integer-stored voxels moves in whole steps; the standard deviation of the differences within 4 robust spreads
    # (which leaves out the edges, and 0.006% of Gaussian noise) does not
    spread = float(np.std(centred[np.abs(centred) <= 4 * robust])) if robust > 0 else 0.0
    return float(spread / np.sqrt(2) / np.median(array[body]))


def scan_quality_by_centre(
    files: pd.DataFrame, centre: pd.Series, *, sequences: tuple[str, ...] = ("t2w", "dwi"), per_centre: int = 10, seed: int = 0
) -> pd.DataFrame:
    """Median relative noise per sequence and in-plane pixel size, for a sample of each centre's patients.

    Parameters
    ----------
    files : DataFrame
        One row per patient (index: patient id), a column of file paths per sequence (``None``
        where a patient lacks it), as :attr:`mmsurv.io.mri_study.MriStudy.files`.
    centre : Series
        The centre of each patient (same index).
    sequences : tuple of str, default ("t2w", "dwi")
    per_centre : int, default 10
        Patients read per centre (drawn at random among those with the sequence).
    seed : int, default 0

    Returns
    -------
    DataFrame
        One row per centre: ``"<sequence> noise (% of body median)"`` per sequence,
        ``"pixel (mm)"`` (in-plane, of the first sequence) and ``"patients read"``.
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, Mapping[str, float]] = {}
    for name, members in centre.groupby(centre).groups.items():
        row: dict[str, float] = {}
        for sequence in sequences:
            have = [p for p in members if files.loc[p, sequence] is not None]
            chosen = rng.choice(have, size=min(per_centre, len(have)), replace=False) if have else []
            noise, pixels = [], []
            for patient in chosen:
                volume = read_sequence(files.loc[patient, sequence])
                noise.append(relative_noise(volume.array))
                pixels.append(float(np.mean(volume.spacing[1:])))
            row[f"{sequence} noise (% of body median)"] = 100 * float(np.median(noise)) if noise else np.nan
            if sequence == sequences[0]:
                row["pixel (mm)"] = float(np.median(pixels)) if pixels else np.nan
                row["patients read"] = len(chosen)
        rows[str(name)] = row
    return pd.DataFrame(rows).T
