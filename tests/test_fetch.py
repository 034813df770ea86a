"""``mmsurv fetch`` against a local stand-in for the GDC and TCIA APIs on 127.0.0.1.

The server serves twin files the virtual cohort wrote, and misbehaves on purpose: one file
is listed with a wrong md5, one download is cut off half-way.
"""

from __future__ import annotations

import hashlib

import pytest
from fake_archive import FakeArchive, RunningArchive

from mmsurv.cli import main
from mmsurv.environment import PROJECT_ROOT
from mmsurv.fetch import LOCK_NAME, FetchError, fetch_manifest, load_manifest, resolve_manifest
from mmsurv.io.dicom import find_rtstruct, index_dicom_folder, read_dicom_series, rtstruct_mask
from mmsurv.io.gdc import read_gdc_clinical, read_sample_sheet, sample_files

MANIFESTS = PROJECT_ROOT / "data_manifests"


@pytest.fixture()
def gdc_archive(virtual_files):
    """Two slides and two STAR-counts files of the virtual BRCA cohort, and its clinical table."""
    cohort = virtual_files["brca"]
    sheet = read_sample_sheet(cohort.sample_sheet)
    archive = FakeArchive(cases_tsv=(cohort.gdc / "clinical.tsv").read_text())
    for data_type in ("Slide Image", "Gene Expression Quantification"):
        for _, row in sheet[sheet["data_type"] == data_type].head(2).iterrows():
            archive.add_file(row["file_id"], cohort.gdc / row["file_id"] / row["file_name"], data_type, row["case_id"], row["sample_id"])
    return archive


def _parts(folder):
    return sorted(p.name for p in folder.rglob("*.part"))


def test_every_manifest_parses_and_names_licence_citation_and_counts():
    names = sorted(p.stem for p in MANIFESTS.glob("*.toml"))
    assert names == [
        "nsclc-radiomics",
        "nsclc-radiomics-genomics",
        "nsclc-radiomics-interobserver1",
        "rider-lung-ct",
        "tcga-brca",
        "tcga-cesc",
        "tcga-cesc-mri",
        "tcga-luad",
        "tcga-lusc",
    ]
    for name in names:
        manifest = load_manifest(MANIFESTS / f"{name}.toml")
        assert manifest.cohort["licence"] and manifest.cohort["citation"] and manifest.endpoints
        assert any(key.startswith("patients") for key in manifest.expected)


def test_fetch_tcga_manifest_resumes_a_cut_download_and_verifies_it(gdc_archive, tmp_path, virtual_files):
    slide = next(f for f in gdc_archive.files.values() if f.data_type == "Slide Image")
    slide.cut_times = 1  # the first transfer hangs up half-way
    with RunningArchive(gdc_archive) as server:
        summary = fetch_manifest(MANIFESTS / "tcga-brca.toml", tmp_path, api_overrides={"gdc": server.url}, progress=False)
        assert summary == {"fetched": 5, "skipped": 0, "failed": 0, "errors": []}
        for served in gdc_archive.files.values():
            assert (tmp_path / "gdc" / served.file_id / served.file_name).read_bytes() == served.data
        resumed = [r for path, r in gdc_archive.requests if path == f"/data/{slide.file_id}" and r]
        assert resumed and resumed[0].startswith("bytes=") and int(resumed[0][6:-1]) > 0
        assert _parts(tmp_path) == []

        lock = load_lock(tmp_path)
        assert lock["cohort"] == "TCGA-BRCA"
        entry = lock["files"][f"gdc/{slide.file_id}/{slide.file_name}"]
        assert entry["md5"] == hashlib.md5(slide.data).hexdigest() and entry["size"] == len(slide.data)

        # what was fetched opens with the kit's readers, through the sample sheet fetch wrote
        sheet = read_sample_sheet(tmp_path / "gdc_sample_sheet.tsv")
        assert len(sample_files(sheet, tmp_path / "gdc", "Slide Image")) == 2
        assert len(read_gdc_clinical(tmp_path / "gdc" / "clinical.tsv")) == len(virtual_files["brca"].truth)

        before = len(gdc_archive.requests)
        again = fetch_manifest(MANIFESTS / "tcga-brca.toml", tmp_path, api_overrides={"gdc": server.url}, progress=False)
        assert again["skipped"] == 5 and again["fetched"] == 0  # everything recorded in the lock file is still there
        assert not any(path.startswith("/data/") for path, _ in gdc_archive.requests[before:])


def load_lock(folder):
    import json

    return json.loads((folder / LOCK_NAME).read_text())


def test_wrong_checksum_is_reported_and_nothing_is_left_under_the_final_name(gdc_archive, tmp_path):
    bad = next(f for f in gdc_archive.files.values() if f.data_type == "Gene Expression Quantification")
    bad.listed_md5 = "0" * 32
    with RunningArchive(gdc_archive) as server:
        with pytest.raises(FetchError, match=rf"(?s)1 of 5 file\(s\) failed:.*{bad.file_name}: md5 .* does not match"):
            fetch_manifest(MANIFESTS / "tcga-brca.toml", tmp_path, api_overrides={"gdc": server.url}, progress=False)
    assert not (tmp_path / "gdc" / bad.file_id / bad.file_name).exists()
    assert _parts(tmp_path) == []
    lock = load_lock(tmp_path)["files"]
    assert f"gdc/{bad.file_id}/{bad.file_name}" not in lock and len(lock) == 4  # the good files are fetched and recorded


def test_download_cut_off_every_time_stays_partial_and_resumes_next_run(gdc_archive, tmp_path):
    slide = next(f for f in gdc_archive.files.values() if f.data_type == "Slide Image")
    slide.cut_times = 100
    final = tmp_path / "gdc" / slide.file_id / slide.file_name
    with RunningArchive(gdc_archive) as server:
        with pytest.raises(FetchError, match=rf"{slide.file_name}: download interrupted.*kept and the next run resumes it"):
            fetch_manifest(MANIFESTS / "tcga-brca.toml", tmp_path, api_overrides={"gdc": server.url}, retries=1, progress=False)
        assert not final.exists()
        partial = final.with_name(final.name + ".part")
        assert 0 < partial.stat().st_size < len(slide.data)
        slide.cut_times = 0
        summary = fetch_manifest(MANIFESTS / "tcga-brca.toml", tmp_path, api_overrides={"gdc": server.url}, progress=False)
        assert summary["failed"] == 0 and final.read_bytes() == slide.data and not partial.exists()


def test_fetch_tcia_collection_unpacks_series_that_the_readers_open(virtual_files, tmp_path):
    cohort = virtual_files["lung_ct"]
    truth = cohort.truth
    patient = truth.loc[(truth["collection"] == "NSCLC-Radiomics") & ~truth["second_reader"], "patient_id"].iloc[0]
    series = index_dicom_folder(cohort.tcia / "NSCLC-Radiomics" / patient)
    archive = FakeArchive()
    for _, row in series.iterrows():
        archive.add_series_folder("NSCLC-Radiomics", row["folder"], row["patient_id"], row["study_uid"], row["series_uid"], row["modality"])
    with RunningArchive(archive) as server:
        manifest = load_manifest(MANIFESTS / "nsclc-radiomics.toml")
        assert len(resolve_manifest(manifest, api_overrides={"tcia": server.url})) == 2  # one CT, one RTSTRUCT
        fetch_manifest(manifest.path, tmp_path, api_overrides={"tcia": server.url}, progress=False)
    fetched = index_dicom_folder(tmp_path / "NSCLC-Radiomics")
    ct_folder = fetched.loc[fetched["modality"] == "CT", "folder"].iloc[0]
    volume = read_dicom_series(ct_folder)
    mask = rtstruct_mask(find_rtstruct(tmp_path / "NSCLC-Radiomics" / patient), volume)
    assert volume.shape == (36, 96, 96) and mask.array.sum() > 0
    assert all(entry["unpacked_files"] > 0 for entry in load_lock(tmp_path)["files"].values())
    assert not list((tmp_path / ".zips").iterdir())  # zips are removed once unpacked
    with RunningArchive(archive) as server:
        again = fetch_manifest(manifest.path, tmp_path, api_overrides={"tcia": server.url}, progress=False)
    assert again["skipped"] == 2 and again["fetched"] == 0


def test_missing_file_on_the_server_is_not_retried(gdc_archive, tmp_path):
    gone = next(iter(gdc_archive.files.values()))
    gone.gone = True
    with RunningArchive(gdc_archive) as server:
        with pytest.raises(FetchError, match="server answered 404"):
            fetch_manifest(MANIFESTS / "tcga-brca.toml", tmp_path, api_overrides={"gdc": server.url}, progress=False)
    assert sum(path == f"/data/{gone.file_id}" for path, _ in gdc_archive.requests) == 1


def test_cli_fetch_reports_failures_with_exit_status(gdc_archive, tmp_path, capsys):
    with RunningArchive(gdc_archive) as server:
        assert main(["fetch", "tcga-brca", "--dest", str(tmp_path / "ok"), "--gdc-api", server.url]) == 0
        assert "fetched 5" in capsys.readouterr().out
        assert main(["fetch", "tcga-brca", "--dest", str(tmp_path / "ok"), "--gdc-api", server.url, "--list"]) == 0
        next(iter(gdc_archive.files.values())).listed_md5 = "f" * 32
        assert main(["fetch", "tcga-brca", "--dest", str(tmp_path / "bad"), "--gdc-api", server.url]) == 1
        assert "does not match" in capsys.readouterr().err
