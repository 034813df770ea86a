"""The CT prognosis pipeline's parts: tumour cubes from DICOM, augmentation, the 3D CNN, saliency, labels and splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mmsurv.ct_cubes import CubeSettings, extract_tumour_cubes, index_ct_scans, max_diameter_mm, tumour_cube
from mmsurv.ct_prognosis import centre_split, ct_patient_table, death_probability, fit_cube_classifier, transfer_to
from mmsurv.cube_data import CubeDataset, augment_cube, centre_crop
from mmsurv.io.errors import DataFormatError
from mmsurv.io.volumes import Volume
from mmsurv.models import ct_cnn
from mmsurv.saliency3d import grad_cam_3d, gradient_saliency

SMOKE = CubeSettings(spacing_mm=2.5, cube_mm=50.0, margin_mm=5.0)


@pytest.fixture(scope="module")
def lung(virtual_files):
    cohort = virtual_files["lung_ct"]
    return cohort, index_ct_scans(cohort.tcia)


def test_index_pairs_every_contour_with_its_scan(lung):
    cohort, scans = lung
    truth = cohort.truth
    counts = scans.groupby("collection")["patient_id"].nunique()
    for collection in ("NSCLC-Radiomics", "NSCLC-Surgery", "RIDER-Lung-CT"):
        assert counts[collection] == (truth["collection"] == collection).sum()
    assert counts["NSCLC-Radiomics-Interobserver1"] == truth["second_reader"].sum()
    rider = scans[scans["collection"] == "RIDER-Lung-CT"]
    assert (rider.groupby("patient_id")["scan"].max() == 2).all()  # test and retest
    # a second reader's contour points at the CT series of the first reader's collection
    second = scans[scans["collection"] == "NSCLC-Radiomics-Interobserver1"]
    first = scans[scans["collection"] == "NSCLC-Radiomics"].set_index("ct_series_uid")
    assert set(second["ct_series_uid"]) <= set(first.index)
    assert (first.loc[second["ct_series_uid"], "ct_folder"].to_numpy() == second["ct_folder"].to_numpy()).all()


def test_tumour_cube_is_centred_on_the_contour_and_scaled(lung):
    cohort, scans = lung
    truth = cohort.truth.set_index("patient_id")
    row = scans[scans["collection"] == "NSCLC-Radiomics"].iloc[3]
    cube, mask, info = tumour_cube(row["ct_folder"], row["rtstruct"], SMOKE)
    assert cube.shape == mask.shape == (SMOKE.stored_voxels,) * 3 == (24, 24, 24)
    assert cube.dtype == np.float32 and 0.0 <= cube.min() and cube.max() <= 1.0
    centre_of_mask = np.argwhere(mask).mean(axis=0)
    assert np.abs(centre_of_mask - (SMOKE.stored_voxels - 1) / 2).max() < 1.5  # centred within about a voxel
    assert info["volume_ml"] == pytest.approx(truth.loc[row["patient_id"], "tumour_volume_ml"], rel=0.1)
    inside, outside = cube[mask > 0].mean(), cube[:2].mean()
    assert inside > outside  # soft tissue against lung / air at the cube's edge
    assert info["max_diameter_mm"] >= 2 * (3 * info["volume_ml"] * 1000 / (4 * np.pi)) ** (1 / 3) * 0.9  # at least a sphere's


def test_max_diameter_of_a_box():
    box = np.zeros((10, 10, 10), dtype=np.uint8)
    box[2:5, 2:6, 2:8] = 1  # 3 x 4 x 6 voxels of 2 x 1 x 1 mm: centres span 4, 3 and 5 mm
    assert max_diameter_mm(Volume(box, (2.0, 1.0, 1.0))) == pytest.approx(np.sqrt(4**2 + 3**2 + 5**2))


def test_extraction_caches_resumes_and_names_bad_files(lung, tmp_path):
    _, scans = lung
    some = scans[scans["collection"] == "NSCLC-Surgery"].head(3)
    first = extract_tumour_cubes(some, SMOKE, cache_dir=tmp_path, workers=1, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 3
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.npz")}
    again = extract_tumour_cubes(some, SMOKE, cache_dir=tmp_path, workers=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.npz")} == stamps  # read back, not recomputed
    np.testing.assert_array_equal(first.cubes, again.cubes)
    assert list(first.scans["patient_id"]) == list(some["patient_id"])
    wrong_roi = CubeSettings(spacing_mm=2.5, roi="GTV-2")
    with pytest.raises(DataFormatError, match=r"1-1\.dcm.*no ROI named 'GTV-2'"):
        extract_tumour_cubes(some, wrong_roi, cache_dir=tmp_path, workers=1, progress=False)


def test_augmentation_shifts_flips_and_rotates_within_the_margin():
    cube = np.arange(24**3, dtype=np.float32).reshape(24, 24, 24)
    centre = centre_crop(cube, 20)
    assert centre.shape == (20, 20, 20) and centre[0, 0, 0] == cube[2, 2, 2]
    rng = np.random.default_rng(0)
    variants = [augment_cube(cube, 20, rng) for _ in range(20)]
    assert all(v.shape == (20, 20, 20) for v in variants)
    assert len({v.tobytes() for v in variants}) > 10
    for v in variants:  # every augmented voxel comes from the stored cube, no interpolation
        assert np.isin(v, cube).all()
    dataset = CubeDataset(cube[None], np.array([1]), 20, augment=False)
    item = dataset[0]
    assert item["image"].shape == (1, 20, 20, 20) and item["target"] == 1
    with pytest.raises(ValueError, match="s >= 26"):
        CubeDataset(cube[None], np.array([1]), 26)


def test_paper_architecture_shapes_on_a_50mm_cube():
    model = ct_cnn("paper").to("meta")
    maps = model.convolutions[:4](torch.empty(2, 1, 50, 50, 50, device="meta"))
    assert maps.shape == (2, 512, 3, 3, 3)  # unpadded convolutions leave the paper's 3^3 map: the adaptive pool does nothing
    assert model(torch.empty(2, 1, 50, 50, 50, device="meta")).shape == (2, 2)
    assert model.features(torch.empty(2, 1, 50, 50, 50, device="meta")).shape == (2, 256)
    assert model.convolutions[0][0].kernel_size == (5, 5, 5) and model.convolutions[1][0].out_channels == 128


def test_narrow_cnn_learns_a_planted_contrast_and_transfer_freezes_convolutions():
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 40)
    cubes = rng.normal(0.3, 0.02, size=(80, 14, 14, 14)).astype(np.float32)
    cubes[labels == 1, 5:9, 5:9, 5:9] += 0.05  # a brighter core means "dead"
    torch.manual_seed(0)
    model = ct_cnn("narrow")
    fit_cube_classifier(model, (cubes[:60], labels[:60]), (cubes[60:], labels[60:]), side=12, epochs=8, patience=8, progress=False)
    probability = death_probability(model, cubes[60:], side=12)
    assert probability.shape == (20,) and ((probability > 0.5) == labels[60:]).mean() > 0.8
    adapted = transfer_to(model)
    before = [p.clone() for p in adapted.convolutions.parameters()]
    fit_cube_classifier(adapted, (cubes[:60], 1 - labels[:60]), (cubes[60:], 1 - labels[60:]), side=12, epochs=2, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, adapted.convolutions.parameters()))
    assert not adapted.convolutions.training  # frozen batch norm keeps its statistics
    with pytest.raises(ValueError, match="both classes"):
        fit_cube_classifier(model, (cubes[:4], np.ones(4)), (cubes[4:8], labels[4:8]), side=12, progress=False)
    cube = centre_crop(cubes[61], 12)
    for saliency in (grad_cam_3d(model, cube, model.convolutions[2]), gradient_saliency(model, cube, n_samples=2)):
        assert saliency.shape == (12, 12, 12) and 0.0 <= saliency.min() and saliency.max() <= 1.0


def test_two_year_label_leaves_out_patients_censored_before_two_years(lung):
    _, scans = lung
    patients = scans[(scans["collection"] == "NSCLC-Radiomics") & (scans["scan"] == 1)]["patient_id"].iloc[:4].tolist()
    clinical = pd.DataFrame({"patient": patients + ["NO-SCAN"], "os_time": [100, 800, 500, 900, 50], "os_event": [1, 1, 0, 0, 1]})
    table = ct_patient_table(scans, clinical, collection="NSCLC-Radiomics")
    assert table["patient_id"].tolist() == patients
    np.testing.assert_array_equal(table["died_2y"], [1.0, 0.0, np.nan, 0.0])  # died at 800 d is after 2 years (730.5 d)
    assert "NO-SCAN" in table.attrs["unmatched"]
    assert (scans.loc[table["scan_row"], "patient_id"].to_numpy() == table["patient_id"].to_numpy()).all()


def test_centre_split_uses_centres_when_it_can_and_patients_otherwise():
    frame = pd.DataFrame({"patient_id": [f"P{i}" for i in range(100)], "centre": np.repeat(["C1", "C2", "C3", "C4"], 25),
                          "died_2y": np.tile([0.0, 1.0, np.nan, 1.0], 25)})
    by_centre = centre_split(frame, tune_centre="C3", test_centre="C4")
    assert (by_centre[frame["centre"] == "C4"] == "test").all() and (by_centre[frame["centre"] == "C3"] == "tune").all()
    assert set(by_centre[frame["centre"].isin(["C1", "C2"])]) == {"train"}
    random = centre_split(frame.drop(columns="centre"), tune_centre="C3", test_centre="C4")
    counts = random.value_counts()
    assert abs(counts["train"] - 50) <= 2 and abs(counts["tune"] - 20) <= 2 and abs(counts["test"] - 30) <= 2  # rounded per stratum
    assert frame.groupby(random)["died_2y"].apply(lambda y: y.isna().mean()).between(0.2, 0.3).all()  # stratified on the label
