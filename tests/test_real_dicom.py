"""Real DICOM files as GDC, TCIA and PACS exports hold them: read right, or refused by name (issue 30).

Every file comes from ``tests/data/real/dicom/`` (origins, licences and sizes in its SOURCES.md):

* pydicom's own test files (pydicom 3.0.2, MIT; each one's origin in pydicom's
  ``data/test_files/README.txt``): ``CT_small.dcm`` and ``MR_small.dcm`` (NEMA WG04 CT1 / MR1,
  downsized), ``MR_small_jpeg_ls_lossless.dcm`` and ``MR_small_jp2klossless.dcm`` (the same MR
  compressed), ``JPGExtended.dcm`` (NEMA WG04 NM1_JPLY, 12-bit lossy JPEG), ``rtstruct.dcm``
  (a structure set in a planning system's shape, of unrecorded origin), and ``dicomdir/`` (a DICOMDIR made with
  DCMTK's dcmmkdir over real CT, CR and MR series from pcir.org, downsized to 16 x 16 px);
* pydicom-data (github.com/pydicom/pydicom-data, MIT, commit b0d40d1e): ``eCT_Supplemental.dcm``
  (NEMA's enhanced multi-frame CT, 2 frames), ``emri_small.dcm`` (a Philips 3D enhanced MR,
  10 frames, downsized) and ``JPEG-LL.dcm`` (NEMA WG04 NM1_JPLL, JPEG lossless).

Where a test needs a series several files long, or a damaged file, it copies real files and
changes them with pydicom (or re-encodes their pixels with imagecodecs), and says so.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.fileset import FileSet
from pydicom.uid import JPEGLosslessSV1, generate_uid

from mmsurv.io.dicom import _decode, find_rtstruct, index_dicom_folder, list_rtstruct_rois, read_dicom_series, read_rtstruct_contours, rtstruct_mask
from mmsurv.io.errors import DataFormatError, DataWarning
from mmsurv.radiology.ct_cubes import index_ct_scans

REAL = Path(__file__).parent / "data" / "real" / "dicom"
CT5N = REAL / "dicomdir" / "98892001" / "CT5N"  # a real 5-slice CT series (2.5 mm apart), listed by the DICOMDIR
MR700 = REAL / "dicomdir" / "98892003" / "MR700"  # a real 7-file MR series of the same patient


def _hu(path: Path) -> np.ndarray:
    """pydicom's own reading of a file: stored values * RescaleSlope + RescaleIntercept (float64)."""
    dataset = pydicom.dcmread(path)
    return dataset.pixel_array * float(dataset.get("RescaleSlope", 1)) + float(dataset.get("RescaleIntercept", 0))


def _copy(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture
def ct(tmp_path: Path) -> Path:
    """A copy of the real CT5N series (five 16 x 16 px slices, named without a suffix as on the CD)."""
    return _copy(sorted(CT5N.iterdir()), tmp_path / "patient" / "CT5N")


def _z(path: Path) -> float:
    return float(pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient[2])


def _rtstruct_on(series_folder: Path, target: Path) -> Path:
    """pydicom's ``rtstruct.dcm``, re-pointed (with pydicom) at a series of ours.

    pydicom's file (no part-10 header) is saved with one; its references and UIDs are changed,
    and each of the ``patient`` ROI's three contours becomes a 4 x 4 mm square on one slice of
    the series, so that it can be rasterised on it.
    """
    first = pydicom.dcmread(sorted(series_folder.iterdir())[0], stop_before_pixels=True)
    rt = pydicom.dcmread(REAL / "rtstruct.dcm", force=True)
    rt.file_meta = FileMetaDataset()
    rt.file_meta.MediaStorageSOPClassUID = rt.SOPClassUID
    rt.SOPInstanceUID = rt.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    rt.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    rt.SeriesInstanceUID = generate_uid()
    rt.PatientID, rt.StudyInstanceUID = first.PatientID, first.StudyInstanceUID
    frame = rt.ReferencedFrameOfReferenceSequence[0]
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].SeriesInstanceUID = first.SeriesInstanceUID
    x, y = (float(v) for v in first.ImagePositionPatient[:2])
    slices = sorted(_z(p) for p in series_folder.iterdir())
    for contour, z in zip(rt.ROIContourSequence[0].ContourSequence, slices[1:4]):
        square = [(x + 2, y + 2), (x + 6, y + 2), (x + 6, y + 6), (x + 2, y + 6)]
        contour.ContourData = [v for px, py in square for v in (px, py, z)]
        contour.NumberOfContourPoints = 4
    target.parent.mkdir(parents=True, exist_ok=True)
    rt.save_as(target, enforce_file_format=True)
    return target


# --- point 4: tags that real files lack ----------------------------------------------------


def test_a_real_ct_series_reads_as_pydicom_reads_each_slice(ct):
    volume = read_dicom_series(ct)
    by_z = sorted(ct.iterdir(), key=_z)  # orientation [1,0,0,0,1,0]: the slice normal is +z
    assert volume.shape == (5, 16, 16)
    assert volume.spacing == pytest.approx((2.5, 0.488281, 0.488281))
    assert [Path(f).name for f in volume.metadata["files"]] == [p.name for p in by_z]
    np.testing.assert_array_equal(volume.array, np.stack([_hu(p) for p in by_z]).astype(np.float32))
    np.testing.assert_allclose(volume.origin, pydicom.dcmread(by_z[0]).ImagePositionPatient)


@pytest.mark.parametrize("keyword", ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SeriesInstanceUID"])
def test_a_slice_without_a_geometry_tag_is_refused_by_file_and_tag(ct, keyword):
    """Before: a 4-slice volume from 5 files (no position or spacing: silently dropped), or an AttributeError naming no file."""
    for victim in (ct / "2693", ct / "3353"):  # a middle slice, then the first one along z
        copy = ct.parent / "backup"
        shutil.copy(victim, copy)
        dataset = pydicom.dcmread(victim)
        del dataset[keyword]
        dataset.save_as(victim)
        with pytest.raises(DataFormatError, match=rf"{victim.name}: has no {keyword} \(00"):
            read_dicom_series(ct)
        shutil.move(copy, victim)


def test_a_ct_without_rescale_intercept_is_refused_and_an_mr_without_one_is_read(ct, tmp_path):
    """A CT stored as HU + 1024 read without its intercept would be 1,024 HU too bright; an MR has no unit to shift."""
    for victims in (["3023"], sorted(p.name for p in ct.iterdir())):
        for name in victims:
            dataset = pydicom.dcmread(ct / name)
            dataset.pop("RescaleIntercept", None)
            dataset.save_as(ct / name)
        with pytest.raises(DataFormatError, match=rf"{victims[0]}: has no RescaleIntercept \(0028,1052\).*CT's stored values are not HU"):
            read_dicom_series(ct)
    mr = _copy([REAL / "MR_small.dcm"], tmp_path / "mr")  # real MR: no RescaleSlope / RescaleIntercept at all
    assert "RescaleIntercept" not in pydicom.dcmread(mr / "MR_small.dcm")
    np.testing.assert_array_equal(read_dicom_series(mr).array[0], _hu(mr / "MR_small.dcm"))


# --- point 5: folders the way CDs and PACS exports come ------------------------------------


def _series_on_the_dicomdir(dicomdir: Path) -> Counter:
    """(series UID, folder) -> number of files, as pydicom's FileSet reads the DICOMDIR itself."""
    return Counter((str(instance.SeriesInstanceUID), Path(instance.path).parent.name) for instance in FileSet(pydicom.dcmread(dicomdir)))


def test_a_cd_with_a_dicomdir_is_indexed_as_its_dicomdir_lists_it(tmp_path):
    """Before: AttributeError ('SeriesInstanceUID') on the DICOMDIR itself."""
    export = tmp_path / "export"
    shutil.copytree(REAL / "dicomdir", export)
    shutil.copy(export / "DICOMDIR", export / "98892001" / "INDEX")  # a DICOMDIR under another name: known by its SOP class
    table = index_dicom_folder(export)
    found = Counter({(row.series_uid, Path(row.folder).name): row.n_files for row in table.itertuples()})
    assert found == _series_on_the_dicomdir(export / "DICOMDIR")
    assert len(table) == 13 and set(table["modality"]) == {"CR", "CT", "MR"}
    assert (export / "DICOMDIR").is_file()  # skipped, not removed
    np.testing.assert_array_equal(read_dicom_series(export / "98892001" / "CT5N").array, read_dicom_series(CT5N).array)


# --- point 6: enhanced multi-frame CT / MR ------------------------------------------------


def test_a_real_enhanced_ct_reads_frame_by_frame_from_its_functional_groups(tmp_path):
    """NEMA's enhanced CT: positions per frame (listed from the head down), orientation, spacing and rescale shared."""
    folder = _copy([REAL / "eCT_Supplemental.dcm"], tmp_path / "ect")
    volume = read_dicom_series(folder)
    stored = pydicom.dcmread(folder / "eCT_Supplemental.dcm").pixel_array  # (2, 512, 512)
    assert volume.shape == (2, 512, 512)
    assert volume.spacing == pytest.approx((10.0, 0.388672, 0.388672))
    # orientation [-1,0,0, 0,1,0]: the slice normal is -z, so frame 2 (z = -149) comes first
    np.testing.assert_allclose(volume.origin, [99.5, -301.5, -149.0])
    np.testing.assert_allclose(volume.axes[:, 0], [0, 0, -1])
    np.testing.assert_array_equal(volume.array, (stored[::-1] * 1.0 - 1024.0).astype(np.float32))  # shared rescale: slope 1, intercept -1024
    assert volume.metadata["modality"] == "CT" and len(volume.metadata["files"]) == 2


def test_an_enhanced_ct_without_its_rescale_is_refused(tmp_path):
    folder = _copy([REAL / "eCT_Supplemental.dcm"], tmp_path / "ect")
    dataset = pydicom.dcmread(folder / "eCT_Supplemental.dcm")
    del dataset.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
    dataset.save_as(folder / "eCT_Supplemental.dcm")
    with pytest.raises(DataFormatError, match=r"eCT_Supplemental\.dcm: has no PixelValueTransformationSequence.*frame 1.*not HU"):
        read_dicom_series(folder)


def test_a_real_enhanced_mr_without_frame_positions_is_refused_as_multi_frame(tmp_path):
    """The Philips 3D MR as pydicom ships it (its functional groups were stripped when it was downsized).

    Before: 'no DICOM image slices found', naming only the folder.
    """
    folder = _copy([REAL / "emri_small.dcm"], tmp_path / "emri")
    with pytest.raises(DataFormatError, match=r"emri_small\.dcm: a multi-frame image \(10 frames\) without PerFrameFunctionalGroupsSequence"):
        read_dicom_series(folder)


def test_an_enhanced_mr_with_functional_groups_reads_in_slice_order(tmp_path):
    """The real Philips MR's pixels with functional groups added by pydicom, frames stored out of order."""
    dataset = pydicom.dcmread(REAL / "emri_small.dcm")
    order = np.random.default_rng(0).permutation(10)  # frame k lies at slice order[k]
    shared = pydicom.Dataset()
    shared.PlaneOrientationSequence = [pydicom.Dataset()]
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PixelMeasuresSequence = [pydicom.Dataset()]
    shared.PixelMeasuresSequence[0].PixelSpacing = [0.5, 0.5]
    shared.PixelMeasuresSequence[0].SliceThickness = 1.2
    dataset.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k in range(10):
        item = pydicom.Dataset()
        item.PlanePositionSequence = [pydicom.Dataset()]
        item.PlanePositionSequence[0].ImagePositionPatient = [-16.0, -16.0, 1.2 * int(order[k])]
        frames.append(item)
    dataset.PerFrameFunctionalGroupsSequence = frames
    folder = tmp_path / "emri"
    folder.mkdir()
    dataset.save_as(folder / "emri_groups.dcm")
    volume = read_dicom_series(folder)
    assert volume.shape == (10, 64, 64) and volume.spacing == pytest.approx((1.2, 0.5, 0.5))
    np.testing.assert_array_equal(volume.array, dataset.pixel_array[np.argsort(order)].astype(np.float32))  # MR: no rescale


# --- point 7: compressed transfer syntaxes ---------------------------------------------------


@pytest.mark.parametrize("twin", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_compressed_slices_read_exactly_as_their_uncompressed_twin(tmp_path, twin):
    """JPEG-LS needs pylibjpeg-libjpeg (before: 'cannot decode its pixel data'); JPEG 2000 pylibjpeg-openjpeg or Pillow."""
    compressed = read_dicom_series(_copy([REAL / twin], tmp_path / "compressed"))
    plain = read_dicom_series(_copy([REAL / "MR_small.dcm"], tmp_path / "plain"))
    np.testing.assert_array_equal(compressed.array, plain.array)
    assert compressed.spacing == plain.spacing


def test_a_jpeg_lossless_ct_series_reads_exactly_as_the_uncompressed_one(ct, tmp_path):
    """The real CT5N slices, their pixels re-encoded as JPEG lossless (process 14, SV1) by imagecodecs (libjpeg-turbo)."""
    lossless = tmp_path / "lossless"
    lossless.mkdir()
    for path in ct.iterdir():
        dataset = pydicom.dcmread(path)
        frame = imagecodecs.jpeg8_encode(dataset.pixel_array.astype(np.uint16), lossless=True, predictor=1)  # values 136..1109
        dataset.PixelData = encapsulate([frame])
        dataset.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        dataset.save_as(lossless / path.name)
    np.testing.assert_array_equal(read_dicom_series(lossless).array, read_dicom_series(ct).array)


def test_real_jpeg_lossless_and_12_bit_jpeg_decode_like_an_independent_decoder():
    """NEMA's NM1 image, JPEG lossless and 12-bit lossy JPEG: before, neither decoded (no plugin for either).

    Secondary Capture images without a position, so not a series: the reader's decoding step
    (``_decode``, what read_dicom_series runs on every file) is called on them directly.
    """
    lossless = _decode(REAL / "JPEG-LL.dcm", (1, 1024, 256))[0]
    encoded = next(generate_frames(pydicom.dcmread(REAL / "JPEG-LL.dcm").PixelData, number_of_frames=1))
    np.testing.assert_array_equal(lossless, imagecodecs.jpegsof3_decode(encoded))  # imagecodecs' own lossless JPEG decoder
    lossy = _decode(REAL / "JPGExtended.dcm", (1, 1024, 256))[0].astype(float)
    error = np.abs(lossy - lossless)
    assert error.mean() < 0.02 * lossless.max() and np.corrcoef(lossy.ravel(), lossless.ravel())[0, 1] > 0.98  # lossy, but the same image


# --- point 8: an RTSTRUCT drawn on an MR beside the CT --------------------------------------


def test_an_rtstruct_on_an_mr_is_left_out_with_one_warning(tmp_path):
    """Before: index_ct_scans refused the whole folder ('its contours belong to CT series ... not under root')."""
    patient = tmp_path / "Collection" / "98890234"
    _copy(sorted(CT5N.iterdir()), patient / "study" / "CT5N")
    _copy(sorted(MR700.iterdir()), patient / "study" / "MR700")
    on_ct = _rtstruct_on(CT5N, patient / "study" / "RT-CT" / "rt.dcm")
    on_mr = _rtstruct_on(MR700, patient / "study" / "RT-MR" / "rt.dcm")
    mr_uid = pydicom.dcmread(next(MR700.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    with pytest.warns(DataWarning, match=rf"1 RTSTRUCT file\(s\) .* not a CT .*{on_mr}: its contours belong to MR series {mr_uid}"):
        scans = index_ct_scans(tmp_path)
    assert scans["rtstruct"].tolist() == [str(on_ct)]
    assert Path(scans["ct_folder"][0]).name == "CT5N"
    shutil.rmtree(patient / "study" / "MR700")  # the MR is not there: the RTSTRUCT's series is missing, refused
    with pytest.raises(DataFormatError, match=rf"{on_mr}: its contours belong to image series {mr_uid}, which is not under"):
        index_ct_scans(tmp_path)


def test_a_derived_rtstruct_rasterises_on_the_real_ct(ct, tmp_path):
    rt = _rtstruct_on(ct, tmp_path / "rt" / "rt.dcm")
    assert find_rtstruct(rt.parent) == rt and list_rtstruct_rois(rt) == ["patient", "Isocenter 1", "Isocenter 2"]
    mask = rtstruct_mask(rt, read_dicom_series(ct), roi="patient")
    per_slice = mask.array.sum(axis=(1, 2)).tolist()  # one square on each of the three middle slices
    assert per_slice[0] == per_slice[4] == 0 and per_slice[1] == per_slice[2] == per_slice[3]
    assert 40 <= per_slice[1] <= 100  # 4 x 4 mm at 0.49 mm per pixel: about 8 x 8 pixels


# --- damaged real files: every reader names the file ---------------------------------------


def _delete(keyword):
    def damage(dataset):
        del dataset[keyword]

    return damage


def _wrong_vr(keyword, value):
    def damage(dataset):
        dataset[keyword] = DataElement(dataset[keyword].tag, "LO", value)

    return damage


def _set(keyword, value):
    def damage(dataset):
        setattr(dataset, keyword, value)

    return damage


def _no_sop_class(dataset):
    del dataset.SOPClassUID, dataset.Modality, dataset.file_meta.MediaStorageSOPClassUID


def _in_roi(function):
    """Apply a damage to the first item of StructureSetROISequence."""
    return lambda dataset: function(dataset.StructureSetROISequence[0])


def _in_contour(function):
    """Apply a damage to the first contour of the 'patient' ROI."""
    return lambda dataset: function(dataset.ROIContourSequence[0].ContourSequence[0])


READ, INDEX, FIND, ROIS, CONTOURS, MASK = (
    "read_dicom_series",
    "index_dicom_folder",
    "find_rtstruct",
    "list_rtstruct_rois",
    "read_rtstruct_contours",
    "rtstruct_mask",
)
SLICE_DAMAGE = {  # name: (damage, the readers that must refuse; the others must read or refuse by name)
    "no SeriesInstanceUID": (_delete("SeriesInstanceUID"), {READ, INDEX}),
    "no ImagePositionPatient": (_delete("ImagePositionPatient"), {READ}),
    "no ImageOrientationPatient": (_delete("ImageOrientationPatient"), {READ}),
    "no PixelSpacing": (_delete("PixelSpacing"), {READ}),
    "no RescaleIntercept": (_delete("RescaleIntercept"), {READ}),
    "no RescaleSlope": (_delete("RescaleSlope"), {READ}),
    "no Rows": (_delete("Rows"), {READ}),
    "no PixelData": (_delete("PixelData"), {READ}),
    "SeriesInstanceUID an empty sequence": (_set("SeriesInstanceUID", None), {READ, INDEX}),
    "ImagePositionPatient text": (_wrong_vr("ImagePositionPatient", "abc"), {READ}),
    "ImageOrientationPatient 3 numbers": (_set("ImageOrientationPatient", [1, 0, 0]), {READ}),
    "ImageOrientationPatient zeros": (_set("ImageOrientationPatient", [0, 0, 0, 0, 0, 0]), {READ}),
    "PixelSpacing 1 number": (_set("PixelSpacing", [0.5]), {READ}),
    "PixelSpacing zeros": (_set("PixelSpacing", [0, 0]), {READ}),
    "RescaleIntercept text": (_wrong_vr("RescaleIntercept", "minus"), {READ}),
    "Rows text": (_wrong_vr("Rows", "x"), {READ}),
    "Rows 17": (_set("Rows", 17), {READ}),
    "NumberOfFrames 3": (_set("NumberOfFrames", 3), {READ}),
}
RTSTRUCT_DAMAGE = {
    "no StructureSetROISequence": (_delete("StructureSetROISequence"), {CONTOURS, MASK}),
    "no ROIContourSequence": (_delete("ROIContourSequence"), {CONTOURS, MASK}),
    "StructureSetROISequence text": (_wrong_vr("StructureSetROISequence", "abc"), {ROIS, CONTOURS, MASK}),
    "ReferencedFrameOfReferenceSequence text": (_wrong_vr("ReferencedFrameOfReferenceSequence", "abc"), {INDEX}),
    "no ROIName": (_in_roi(_delete("ROIName")), {ROIS, CONTOURS, MASK}),
    "ROINumber text": (_in_roi(_wrong_vr("ROINumber", "one")), {CONTOURS, MASK}),
    "no ReferencedROINumber": (lambda d: _delete("ReferencedROINumber")(d.ROIContourSequence[0]), {CONTOURS, MASK}),
    "no ContourData": (_in_contour(_delete("ContourData")), {CONTOURS, MASK}),
    "ContourData 4 numbers": (_in_contour(_set("ContourData", [1, 2, 3, 4])), {CONTOURS, MASK}),
    "ContourData text": (_in_contour(_wrong_vr("ContourData", "abc")), {CONTOURS, MASK}),
    "no SOPClassUID nor Modality": (_no_sop_class, {FIND, ROIS, CONTOURS, MASK}),
}


def _readers(ct_folder: Path, rt: Path, reference) -> dict:
    return {
        "read_dicom_series": lambda: read_dicom_series(ct_folder),
        "index_dicom_folder": lambda: index_dicom_folder(ct_folder.parent),
        "find_rtstruct": lambda: find_rtstruct(rt.parent),
        "list_rtstruct_rois": lambda: list_rtstruct_rois(rt),
        "read_rtstruct_contours": lambda: read_rtstruct_contours(rt, "patient"),
        "rtstruct_mask": lambda: rtstruct_mask(rt, reference, "patient"),
    }


def _check_every_reader(victim: Path, readers: dict, must_refuse: set[str]) -> None:
    """Each reader either reads (the damage is none of its business) or raises a DataFormatError naming the victim."""
    refused = set()
    for name, read in readers.items():
        try:
            read()
        except DataFormatError as error:
            assert victim.name in str(error), f"{name}: {error}"
            refused.add(name)
        # any other exception fails the test, with its traceback
    assert must_refuse <= refused, f"read without a word: {sorted(must_refuse - refused)}"


@pytest.fixture
def layout(ct, tmp_path):
    """The real CT5N series and a derived RTSTRUCT on it, side by side under one patient folder."""
    rt = _rtstruct_on(ct, ct.parent / "RT" / "rt.dcm")
    return ct, rt, read_dicom_series(ct)


@pytest.mark.parametrize("damage", sorted(SLICE_DAMAGE))
def test_a_damaged_ct_slice_is_named_by_every_reader(layout, damage):
    """A real CT slice with a tag deleted or of the wrong VR / value (written with pydicom)."""
    ct, rt, reference = layout
    victim = ct / "2693"
    dataset = pydicom.dcmread(victim)
    function, must_refuse = SLICE_DAMAGE[damage]
    function(dataset)
    dataset.save_as(victim)
    _check_every_reader(victim, _readers(ct, rt, reference), must_refuse)


@pytest.mark.filterwarnings("ignore:Invalid value for VR IS")  # pydicom's own word on 'one' as an ROINumber
@pytest.mark.parametrize("damage", sorted(RTSTRUCT_DAMAGE))
def test_a_damaged_rtstruct_is_named_by_every_reader(layout, damage):
    """The (re-pointed) real RTSTRUCT with a tag deleted or of the wrong VR / value."""
    ct, rt, reference = layout
    dataset = pydicom.dcmread(rt)
    function, must_refuse = RTSTRUCT_DAMAGE[damage]
    function(dataset)
    dataset.save_as(rt)
    _check_every_reader(rt, _readers(ct, rt, reference), must_refuse)


@pytest.mark.parametrize("cut", [0, 100, 400, 0.5, 0.9])
@pytest.mark.parametrize("which", ["slice", "rtstruct"])
def test_cut_and_empty_files_are_named_by_every_reader(layout, which, cut):
    """A file cut after ``cut`` bytes (or that fraction of it): empty, in the preamble, in the header, in the data."""
    ct, rt, reference = layout
    victim = ct / "2693" if which == "slice" else rt
    data = victim.read_bytes()
    victim.write_bytes(data[: cut if isinstance(cut, int) else int(cut * len(data))])
    readers = _readers(ct, rt, reference)
    if which == "slice" and isinstance(cut, int) and 0 < cut < 132:
        # shorter than the DICOM preamble and named without a suffix: not recognisable as DICOM, so
        # skipped with a warning naming it - and the slice it was is then a missing slice
        with pytest.warns(DataWarning, match="2693"), pytest.raises(DataFormatError, match="missing slice"):
            readers["read_dicom_series"]()
        return
    _check_every_reader(victim, readers, {READ} if which == "slice" else {CONTOURS})
