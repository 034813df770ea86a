"""The NIfTI, TCIA-table and MRI-study readers on real public files, whole and damaged.

Files and their origins:

- ``anatomical.nii`` (a real structural MRI, downsampled, 33 x 41 x 25 voxels of 2 mm, 68 kB),
  ``functional.nii`` (4D fMRI), ``example4d.nii.gz`` (4D), ``example_nifti2.nii.gz`` (NIfTI-2,
  4D) and ``standard.nii.gz``: shipped inside the nibabel wheel (``nibabel/tests/data/``),
  MIT licence (nibabel's ``COPYING``). Read from the installed package, not copied.
- ``tests/data/real/tcia/nsclc_radiomics_lung1_clinical_200.csv``: the first 200 patients of
  TCIA's NSCLC-Radiomics clinical table, CC BY-NC 3.0; origin in ``tests/data/real/tcia/SOURCES.md``.

Every damaged copy must be refused with a :class:`DataFormatError` whose message names the
file: never a bare ``ValueError`` or a pandas / nibabel exception without it.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mmsurv.io import DataFormatError
from mmsurv.io.mri_study import read_mri_study, read_sequence
from mmsurv.io.nifti import read_nifti, write_nifti
from mmsurv.io.tcia import read_nsclc_radiomics_clinical

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
LUNG1_CSV = Path(__file__).parent / "data" / "real" / "tcia" / "nsclc_radiomics_lung1_clinical_200.csv"
_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])


def _refused(reader, path: Path, *words: str) -> DataFormatError:
    """Call ``reader(path)``; it must raise a DataFormatError naming ``path`` (and saying ``words``)."""
    with pytest.raises(DataFormatError) as caught:
        reader(path)
    message = str(caught.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    return caught.value


# --- NIfTI -------------------------------------------------------------------------------------


def test_a_real_nifti_reads_with_nibabels_voxels_and_geometry_in_lps():
    path = NIBABEL_DATA / "anatomical.nii"
    image = nib.load(path)
    volume = read_nifti(path)
    voxels = np.asanyarray(image.dataobj)
    # the kit's arrays are (slice, row, column) = nibabel's (k, j, i)
    np.testing.assert_array_equal(volume.array, np.transpose(voxels, (2, 1, 0)))
    assert volume.spacing == pytest.approx(image.header.get_zooms()[::-1])
    # any voxel lands where nibabel's affine puts it, in LPS instead of RAS
    rng = np.random.default_rng(0)
    ijk = rng.integers(0, voxels.shape, size=(20, 3))
    ras = nib.affines.apply_affine(image.affine, ijk)
    kji = ijk[:, ::-1]
    np.testing.assert_allclose(volume.index_to_mm(kji), ras @ _LPS_FROM_RAS.T, atol=1e-9)


def test_a_real_nifti_survives_a_write_and_read_round_trip(tmp_path):
    volume = read_nifti(NIBABEL_DATA / "anatomical.nii")
    again = read_nifti(write_nifti(tmp_path / "copy.nii.gz", volume))
    np.testing.assert_array_equal(again.array, volume.array)
    np.testing.assert_allclose(again.index_to_mm([[3, 4, 5]]), volume.index_to_mm([[3, 4, 5]]), atol=1e-5)


@pytest.mark.parametrize("name", ["functional.nii", "example4d.nii.gz", "example_nifti2.nii.gz"])
def test_real_4d_niftis_are_refused_by_name(name):
    _refused(read_nifti, NIBABEL_DATA / name, "3D")


@pytest.mark.parametrize("fraction", [0.0, 0.002, 0.1, 0.3, 0.5, 0.9, 0.999])
def test_a_cut_nifti_is_refused_by_name(tmp_path, fraction):
    raw = (NIBABEL_DATA / "anatomical.nii").read_bytes()
    path = tmp_path / "cut.nii"
    path.write_bytes(raw[: int(len(raw) * fraction)])
    _refused(read_nifti, path)


def _with_header(tmp_path: Path, **fields) -> Path:
    """A copy of the real ``anatomical.nii`` with header fields changed (written through nibabel's own header)."""
    raw = (NIBABEL_DATA / "anatomical.nii").read_bytes()
    header = nib.load(NIBABEL_DATA / "anatomical.nii").header.copy()
    for name, value in fields.items():
        header[name] = value
    path = tmp_path / "damaged.nii"
    path.write_bytes(header.binaryblock + raw[len(header.binaryblock) :])
    return path


def test_a_nifti_whose_affine_is_zero_is_refused_not_given_zero_spacing(tmp_path):
    # nibabel reads this header without complaint; the kit would build a volume of zero voxel size
    path = _with_header(tmp_path, qform_code=0, sform_code=1, srow_x=0, srow_y=0, srow_z=0)
    _refused(read_nifti, path, "singular")


def test_a_nifti_whose_affine_holds_nan_is_refused_not_given_nan_spacing(tmp_path):
    path = _with_header(tmp_path, qform_code=0, sform_code=1, srow_x=[np.nan, 0, 0, 0])
    _refused(read_nifti, path, "non-finite")


def test_a_nifti_with_an_unknown_datatype_is_refused_by_name(tmp_path):
    _refused(read_nifti, _with_header(tmp_path, datatype=1234))


def test_a_nifti_whose_dimensions_overrun_the_file_is_refused_by_name(tmp_path):
    _refused(read_nifti, _with_header(tmp_path, dim=[3, 250, 41, 33, 1, 1, 1, 1]))


# --- TCIA clinical table ---------------------------------------------------------------------


def test_the_real_nsclc_radiomics_table_reads_with_its_gaps():
    table = read_nsclc_radiomics_clinical(LUNG1_CSV)
    raw = pd.read_csv(LUNG1_CSV)
    assert len(table) == len(raw) == 200
    assert table["patient"].is_unique and table["patient"].iloc[0] == "LUNG1-001"
    np.testing.assert_array_equal(table["os_time"], raw["Survival.time"])
    np.testing.assert_array_equal(table["os_event"], raw["deadstatus.event"])
    assert set(table["os_event"]) == {0, 1}
    # the real table's gaps stay gaps, and columns the kit does not know are kept
    assert np.isnan(table.set_index("patient").loc["LUNG1-056", "age"])
    assert "Nodule_Width" in table.columns


def _lung1_copy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "NSCLC-Radiomics-Lung1.clinical.csv"
    path.write_text(text)
    return path


def test_damaged_copies_of_the_real_tcia_table_are_refused_by_name(tmp_path):
    text = LUNG1_CSV.read_text()
    header, first_row = text.splitlines()[:2]
    damaged = {
        "empty": "",
        "header only": header + "\n",
        "cut inside a row": text[: text.index("LUNG1-003") + 20],
        "a time that is not a number": text.replace(",2165,1,", ",about six years,1,", 1),
        "a negative time": text.replace(",2165,1,", ",-2165,1,", 1),
        "an event coded 2": text.replace(",2165,1,", ",2165,2,", 1),
        "a column missing": text.replace("Survival.time", "Survival_time", 1),
    }
    for why, content in damaged.items():
        path = _lung1_copy(tmp_path, content)
        try:
            _refused(read_nsclc_radiomics_clinical, path)
        except AssertionError as error:
            raise AssertionError(f"{why}: {error}") from error
    binary = tmp_path / "binary.csv"
    binary.write_bytes((NIBABEL_DATA / "anatomical.nii").read_bytes()[:4000])
    _refused(read_nsclc_radiomics_clinical, binary)
    _refused(read_nsclc_radiomics_clinical, tmp_path / "no-such-table.csv", "no such")


# --- an MRI study folder around a real NIfTI -------------------------------------------------


def test_a_study_folder_reads_a_real_nifti_and_names_a_broken_clinical_table(tmp_path):
    study = tmp_path / "study"
    (study / "mri" / "P1").mkdir(parents=True)
    (study / "mri" / "P1" / "t2.nii").write_bytes((NIBABEL_DATA / "anatomical.nii").read_bytes())
    (study / "clinical.csv").write_text("")
    _refused(read_mri_study, study)
    # the sequence reader hands a real file to the NIfTI reader, and a cut one is named
    assert read_sequence(study / "mri" / "P1" / "t2.nii").shape == (25, 41, 33)
    cut = study / "mri" / "P1" / "cut.nii"
    cut.write_bytes((NIBABEL_DATA / "anatomical.nii").read_bytes()[:1000])
    _refused(read_sequence, cut)
