"""The scanner-noise measure of notebook 05: white noise of a known level on a piecewise-flat phantom."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.io.mri_study import read_sequence
from mmsurv.io.nifti import write_nifti
from mmsurv.io.volumes import Volume
from mmsurv.radiology.scanner_quality import relative_noise, scan_quality_by_centre


def _phantom(noise_sd: float, gain: float = 1.0, seed: int = 0) -> np.ndarray:
    """An ellipse of body (200) holding a brighter organ (320), in air; Gaussian noise of ``noise_sd`` before the gain."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(np.arange(6), np.linspace(-1, 1, 64), np.linspace(-1, 1, 64), indexing="ij")
    body = (x / 0.9) ** 2 + (y / 0.7) ** 2 < 1
    organ = (x / 0.3) ** 2 + (y / 0.25) ** 2 < 1
    signal = np.where(body, 200.0, 0.0) + np.where(organ, 120.0, 0.0)
    return gain * np.abs(signal + rng.normal(0, noise_sd, signal.shape))


@pytest.mark.parametrize("noise_sd", [4.0, 10.0, 20.0])
def test_relative_noise_recovers_the_planted_noise_whatever_the_gain(noise_sd):
    # the body's median is the body level, 200 (the organ is a small part): the measure is noise_sd / 200
    for gain in (0.5, 1.0, 3.0):
        assert relative_noise(_phantom(noise_sd, gain)) == pytest.approx(noise_sd / 200, rel=0.1)


def test_relative_noise_orders_scanners_and_refuses_an_empty_body():
    assert relative_noise(_phantom(5.0)) < relative_noise(_phantom(8.0)) < relative_noise(_phantom(12.0))
    with pytest.raises(ValueError):
        relative_noise(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError):
        relative_noise(np.ones((4, 4)))


def test_scan_quality_by_centre_reads_files_and_pixel_sizes(tmp_path):
    files, centres = {}, {}
    for i, (centre, sd, pixel) in enumerate([("A", 4.0, 1.0), ("A", 4.0, 1.0), ("B", 16.0, 0.5), ("B", 16.0, 0.5)]):
        path = tmp_path / f"p{i}.nii.gz"
        write_nifti(path, Volume(_phantom(sd, seed=i).astype(np.int16), (4.0, pixel, pixel)))
        files[f"p{i}"] = {"t2w": str(path), "dwi": None}
        centres[f"p{i}"] = centre
    assert read_sequence(files["p0"]["t2w"]).array.shape == (6, 64, 64)
    table = scan_quality_by_centre(pd.DataFrame(files).T, pd.Series(centres), per_centre=5)
    assert table.loc["A", "t2w noise (% of body median)"] == pytest.approx(2.0, rel=0.15)
    assert table.loc["B", "t2w noise (% of body median)"] == pytest.approx(8.0, rel=0.15)
    assert table["pixel (mm)"].to_dict() == {"A": pytest.approx(1.0), "B": pytest.approx(0.5)}
    assert table["patients read"].to_dict() == {"A": 2, "B": 2}
    assert table["dwi noise (% of body median)"].isna().all()  # no patient has the sequence
