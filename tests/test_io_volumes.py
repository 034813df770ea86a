"""DICOM CT + RTSTRUCT, NIfTI MRI and the shared volume preprocessing, on files the virtual cohort writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from scipy.stats import spearmanr

from mmsurv.io import DataFormatError, DataWarning
from mmsurv.io.dicom import find_rtstruct, index_dicom_folder, list_rtstruct_rois, read_dicom_series, rtstruct_mask
from mmsurv.io.nifti import read_nifti, write_nifti
from mmsurv.io.tcia import read_nsclc_radiomics_clinical
from mmsurv.io.volumes import Volume, body_mask, crop_cube, mask_centroid_mm, normalise_mri, resample_to_spacing, scale_hu, window_hu


@pytest.fixture(scope="module")
def ct(virtual_files):
    cohort = virtual_files["lung_ct"]
    series = index_dicom_folder(cohort.tcia / "NSCLC-Radiomics")
    return cohort, series


def _scan(series, patient, study_suffix="scan-1"):
    rows = series[(series["patient_id"] == patient) & (series["modality"] == "CT")]
    folder = [f for f in rows["folder"] if f.parent.name.endswith(study_suffix)][0]
    return read_dicom_series(folder), find_rtstruct(folder.parent)


def test_index_finds_a_ct_and_an_rtstruct_per_patient(ct):
    cohort, series = ct
    radiotherapy = cohort.truth[cohort.truth["collection"] == "NSCLC-Radiomics"]
    counts = series.groupby("modality")["patient_id"].nunique()
    assert counts["CT"] == counts["RTSTRUCT"] == len(radiotherapy)
    assert (series.loc[series["modality"] == "CT", "n_files"] == 36).all()


def test_ct_series_reads_in_hounsfield_units_with_geometry(ct):
    cohort, series = ct
    volume, rtstruct = _scan(series, "VLUNG1-001")
    assert volume.shape == (36, 96, 96)
    assert volume.spacing == (4.0, 3.5, 3.5)
    assert volume.metadata["patient_id"] == "VLUNG1-001"
    positions = [volume.index_to_mm([k, 0, 0])[2] for k in range(3)]
    assert np.diff(positions) == pytest.approx([4.0, 4.0])  # sorted by position, not by (shuffled) file name
    assert volume.array.min() == pytest.approx(-1024, abs=1)  # air outside the body, clipped as scanners do
    lungs = (volume.array > -950) & (volume.array < -700)
    soft_tissue = (volume.array > -100) & (volume.array < 150)
    assert lungs.mean() > 0.05 and soft_tissue.mean() > 0.1
    assert list_rtstruct_rois(rtstruct) == ["GTV-1"]


def test_rtstruct_mask_recovers_the_planted_tumour(ct):
    cohort, series = ct
    truth = cohort.truth.set_index("patient_id")
    volumes, invasion, spread, proliferation = [], [], [], []
    for patient in truth.index[truth["collection"] == "NSCLC-Radiomics"][:20]:
        volume, rtstruct = _scan(series, patient)
        mask = rtstruct_mask(rtstruct, volume, roi="GTV-1")
        assert mask.array.shape == volume.shape and mask.metadata["roi"] == "GTV-1"
        voxels_ml = mask.array.sum() * np.prod(volume.spacing) / 1000
        assert voxels_ml == pytest.approx(truth.loc[patient, "tumour_volume_ml"], rel=0.1)
        inside = volume.array[ndimage.binary_erosion(mask.array > 0)]  # the core, without the partial-volume rim
        volumes.append(voxels_ml)
        invasion.append(truth.loc[patient, "invasion"])
        spread.append(inside.std())
        proliferation.append(truth.loc[patient, "proliferation"])
    assert spearmanr(volumes, invasion).statistic > 0.6  # size carries invasion
    assert spearmanr(spread, proliferation).statistic > 0.6  # texture carries proliferation


def test_rescan_and_second_reader_see_the_same_tumour(ct):
    cohort, series = ct
    truth = cohort.truth
    rescanned = truth.loc[truth["rescanned"], "patient_id"].iloc[0]
    rider = index_dicom_folder(cohort.tcia / "RIDER-Lung-CT" / rescanned, first_file_only=True)
    first, rt1 = _scan(rider, rescanned, "scan-1")
    second, rt2 = _scan(rider, rescanned, "scan-2")
    assert not np.array_equal(first.array, second.array)  # new noise, new position
    m1, m2 = rtstruct_mask(rt1, first).array.astype(bool), rtstruct_mask(rt2, second).array.astype(bool)
    assert int(m2.sum()) == pytest.approx(int(m1.sum()), rel=0.15)
    contoured_twice = truth.loc[truth["second_reader"], "patient_id"].iloc[0]
    scan, reader1 = _scan(series, contoured_twice)
    reader2 = find_rtstruct(cohort.tcia / "NSCLC-Radiomics-Interobserver1" / contoured_twice)
    own, other = rtstruct_mask(reader1, scan).array.astype(bool), rtstruct_mask(reader2, scan).array.astype(bool)
    dice = 2 * (own & other).sum() / (own.sum() + other.sum())
    assert 0.5 < dice < 0.98


def test_resample_crop_and_intensity_helpers(ct):
    _, series = ct
    volume, rtstruct = _scan(series, "VLUNG1-002")
    mask = rtstruct_mask(rtstruct, volume)
    centre = mask_centroid_mm(mask)
    iso = resample_to_spacing(volume, 2.0)
    iso_mask = resample_to_spacing(mask, 2.0, order=0)
    assert iso.spacing == (2.0, 2.0, 2.0) and iso_mask.array.dtype == np.uint8
    assert np.linalg.norm(mask_centroid_mm(iso_mask) - centre) < 2.0  # the tumour stays where it is in the patient
    cube = crop_cube(iso, centre, 50.0)
    assert cube.shape == (25, 25, 25)
    assert np.linalg.norm(cube.index_to_mm([12, 12, 12]) - centre) < 2.0
    edge = crop_cube(iso, iso.index_to_mm([0, 0, 0]), 50.0)  # leaves the image: padded with air
    assert edge.array[0, 0, 0] == pytest.approx(iso.array.min())
    with pytest.raises(ValueError, match="isotropic"):
        crop_cube(volume, centre, 50.0)
    assert scale_hu(np.array([-1024.0, 3071.0, 5000.0])).tolist() == [0.0, 1.0, 1.0]
    assert window_hu(np.array([-1350.0, -600.0, 150.0])).tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_nsclc_clinical_csv(ct, tmp_path):
    cohort, _ = ct
    table = read_nsclc_radiomics_clinical(cohort.tcia / "NSCLC-Radiomics.clinical.csv")
    assert {"patient", "overall_stage", "os_time", "os_event", "histology", "centre"} <= set(table.columns)  # plus the virtual centre
    truth = cohort.truth.set_index("patient_id").loc[table["patient"]]
    assert np.array_equal(table["os_time"].to_numpy(), truth["time"].to_numpy())
    broken = tmp_path / "negative.csv"
    raw = (cohort.tcia / "NSCLC-Radiomics.clinical.csv").read_text().splitlines()
    header, first = raw[0], raw[1].split(",")
    first[header.split(",").index("Survival.time")] = "-5"
    broken.write_text("\n".join([header, ",".join(first)] + raw[2:]) + "\n")
    with pytest.raises(DataFormatError, match=r"negative\.csv.*negative Survival.time.*VLUNG1-001"):
        read_nsclc_radiomics_clinical(broken)
    (tmp_path / "cols.csv").write_text("PatientID,age\nX,60\n")
    with pytest.raises(DataFormatError, match="missing column"):
        read_nsclc_radiomics_clinical(tmp_path / "cols.csv")


def test_mri_nifti_and_normalisation(virtual_files):
    cohort = virtual_files["cesc_mri"]
    truth = cohort.truth.set_index("patient_id")
    restriction, brightness, centres = [], [], set()
    with_dwi = truth.index[truth["has_dwi"]]
    with pytest.raises(ValueError, match="'ratio'"):
        normalise_mri(read_nifti(cohort.mri / with_dwi[0] / "dwi.nii.gz"), method="median")
    for patient in list(with_dwi[:24]):
        t2 = read_nifti(cohort.mri / patient / "t2w.nii.gz")
        dwi = read_nifti(cohort.mri / patient / "dwi.nii.gz")
        mask = read_nifti(cohort.mri / patient / "tumour_mask.nii.gz")
        assert dwi.shape == mask.shape == t2.shape and dwi.spacing == t2.spacing and t2.shape[0] == 16
        centres.add((truth.loc[patient, "centre"], t2.spacing))
        body = body_mask(t2.array)
        assert mask.array[body].sum() == mask.array.sum()  # the tumour is inside the body
        zscored = normalise_mri(dwi, body)
        values = zscored.array[body]
        low, high = np.percentile(values, [0.5, 99.5])
        typical = values[(values >= low) & (values <= high)]  # outliers are left out of the statistics, not clipped
        assert typical.mean() == pytest.approx(0.0, abs=1e-3) and typical.std() == pytest.approx(1.0, abs=1e-2)
        brightness.append(normalise_mri(dwi, body, method="robust").array[mask.array > 0].mean())
        restriction.append(truth.loc[patient, "diffusion_restriction"])
        relative = normalise_mri(dwi, body, method="ratio").array[body]  # signal relative to the body's median
        assert abs(np.median(relative)) < 0.02 and relative.max() > 0.5  # the tumour is brighter than the body's typical tissue
        assert mask.array.sum() > 0
    assert len({spacing for _, spacing in centres}) == 2  # the external centre scans at a finer in-plane resolution
    # centre-specific scanner gains differ by up to 1.6x; after normalisation the planted signal shows
    assert spearmanr(brightness, restriction).statistic > 0.5
    without = truth.index[~truth["has_dwi"]][0]
    assert not (cohort.mri / without / "dwi.nii.gz").exists() and (cohort.mri / without / "t2w.nii.gz").exists()


def test_nifti_round_trip_keeps_geometry(tmp_path):
    volume = Volume(np.random.default_rng(0).random((5, 6, 7)).astype(np.float32), (4.0, 1.5, 1.0), origin=np.array([10.0, -20.0, 5.0]))
    again = read_nifti(write_nifti(tmp_path / "v.nii.gz", volume))
    assert np.allclose(again.array, volume.array) and again.spacing == volume.spacing
    assert np.allclose(again.index_to_mm([2, 3, 4]), volume.index_to_mm([2, 3, 4]))


# ---------------------------------------------------------------- bad input


def _copy_series(series, patient, tmp_path):
    rows = series[(series["patient_id"] == patient) & (series["modality"] == "CT")]
    source = [f for f in rows["folder"] if f.parent.name.endswith("scan-1")][0]
    target = tmp_path / patient / "ct"
    shutil.copytree(source, target)
    return source, target


def test_missing_slice_is_named(ct, tmp_path):
    _, series = ct
    _, folder = _copy_series(series, "VLUNG1-003", tmp_path)
    volume = read_dicom_series(folder)
    middle = volume.metadata["files"][17]
    (folder / middle.split("/")[-1]).unlink()
    with pytest.raises(DataFormatError, match=r"missing slice.*gap.*8\.00 mm.*4\.00 mm.*1 slice"):
        read_dicom_series(folder)


def test_two_series_mixed_in_one_folder(ct, tmp_path):
    _, series = ct
    _, folder = _copy_series(series, "VLUNG1-003", tmp_path)
    other_rows = series[(series["patient_id"] == "VLUNG1-004") & (series["modality"] == "CT")]
    other = [f for f in other_rows["folder"] if f.parent.name.endswith("scan-1")][0]
    for path in list(other.iterdir())[:5]:
        shutil.copy(path, folder / f"other-{path.name}")
    with pytest.raises(DataFormatError, match="2 image series mixed together"):
        read_dicom_series(folder)
    uid = read_dicom_series(other).metadata["series_uid"]
    with pytest.raises(DataFormatError, match="missing slice"):
        read_dicom_series(folder, series_uid=uid)  # only 5 of its slices were copied, not neighbouring ones


def test_rtstruct_without_the_roi_lists_what_it_has(ct):
    _, series = ct
    volume, rtstruct = _scan(series, "VLUNG1-001")
    with pytest.raises(DataFormatError, match=r"no ROI named 'GTV-2'.*\['GTV-1'\]"):
        rtstruct_mask(rtstruct, volume, roi="GTV-2")
    with pytest.raises(DataFormatError, match="is not an RTSTRUCT"):
        rtstruct_mask(volume.metadata["files"][0], volume)


def test_corrupt_dicom_and_nifti_are_named(ct, tmp_path, virtual_files):
    _, series = ct
    _, folder = _copy_series(series, "VLUNG1-005", tmp_path)
    victim = sorted(folder.iterdir())[3]
    victim.write_bytes(b"garbage" * 10)
    with pytest.raises(DataFormatError, match=victim.name):
        read_dicom_series(folder)
    source = virtual_files["cesc_mri"].mri / virtual_files["cesc_mri"].truth["patient_id"].iloc[0] / "t2w.nii.gz"
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(source.read_bytes()[:300])
    with pytest.raises(DataFormatError, match=r"cut\.nii\.gz.*not a readable NIfTI"):
        read_nifti(cut)


def test_stray_files_in_a_series_folder_are_skipped_and_corrupt_dicom_refused(ct, tmp_path):
    _, series = ct
    _, folder = _copy_series(series, "VLUNG1-006", tmp_path)
    expected = read_dicom_series(folder)
    (folder / "README.txt").write_text("downloaded with the NBIA data retriever\n")
    (folder / "notes").write_text("no suffix, not DICOM\n")
    with pytest.warns(DataWarning, match=r"skipped 2 file\(s\) that are not DICOM.*README\.txt"):
        volume = read_dicom_series(folder)
    assert np.array_equal(volume.array, expected.array)
    with pytest.warns(DataWarning, match="skipped 2 file"):  # the index agrees on which files count
        indexed = index_dicom_folder(folder, first_file_only=True)
    assert indexed["n_files"].tolist() == [len(expected.metadata["files"])]
    # a DICOM file cut short keeps its marker and header: refused when its pixels are read
    victim = folder / Path(expected.metadata["files"][5]).name
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size - 200])
    with pytest.warns(DataWarning), pytest.raises(DataFormatError, match=rf"{victim.name}.*cannot decode its pixel data"):
        read_dicom_series(folder)
