"""``mmsurv embed``: per-slide feature files, the local and Ray engines, resuming after a kill, bad input, tissue outlines.

The engines run on 30 of the smoke virtual cohort's 120 slides (small CNN, 64-px tiles at 1 um/px:
5,418 tiles) plus one slide cut short, each in a child process that kills itself with SIGKILL
once a few slides are written - a real kill, mid-run - and then again to completion. Both
write tissue outlines (``outlines=True``), which must be the same files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmsurv.cli import main
from mmsurv.io.errors import DataFormatError, DataWarning
from mmsurv.pathology.cohort_embedding import embed_cohort, find_slides
from mmsurv.pathology.extractors import ExtractorSpec, read_weights
from mmsurv.pathology.feature_files import finished_slide, load_feature_folder, read_slide_features, write_slide_features

# Runs one embedding; kills its own process (SIGKILL) right after the KILL_AFTER-th slide file is written.
_RUN = """
import json, os, signal, sys
from mmsurv.pathology.cohort_embedding import embed_cohort
from mmsurv.pathology.extractors import ExtractorSpec

cohort, out, engine, kill_after, outlines = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "outlines"
written = []

def written_one(slide_id):
    written.append(slide_id)
    if len(written) == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

summary = embed_cohort(cohort, out, extractor=ExtractorSpec("small"), mpp=1.0, tile_px=64, engine=engine,
                       batch_size=64, progress=False, on_slide_written=written_one, outlines=outlines)
print("SUMMARY " + json.dumps({"embedded": summary.embedded, "skipped": summary.skipped, "failed": summary.failed,
                               "n_tiles": summary.n_tiles, "folder": str(summary.folder)}))
"""


def _run(cohort: Path, out: Path, engine: str, kill_after: int = 0) -> dict | None:
    """Run the embedding, with outlines, in a child process (its own session, so that Ray's helpers die with it)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _RUN, str(cohort), str(out), engine, str(kill_after), "outlines"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=600)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # Ray's agents outlive a killed driver otherwise
        except ProcessLookupError:
            pass
    if kill_after:
        assert process.returncode == -signal.SIGKILL, f"expected the run to be killed mid-way:\n{stdout}\n{stderr[-3000:]}"
        return None
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("SUMMARY "))[len("SUMMARY ") :])


N_SLIDES = 30  # of the smoke cohort's 120: a kill mid-run on both engines in 2.3 min, where all 120 took 6


@pytest.fixture(scope="module")
def slide_folder(virtual_files, tmp_path_factory) -> Path:
    """The first N_SLIDES of the smoke brca cohort's slides (links) in one folder, with one more slide cut short."""
    folder = tmp_path_factory.mktemp("slides")
    slides = dict(sorted(find_slides(virtual_files["brca"].root).items())[:N_SLIDES])
    for path in slides.values():
        (folder / path.name).symlink_to(path.resolve())
    first = next(iter(slides.values()))
    (folder / "VIRT-CUT-SHORT.svs").write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    return folder


def _killed_then_resumed(slide_folder: Path, out: Path, engine: str) -> tuple[dict, dict[str, tuple[int, int]]]:
    _run(slide_folder, out, engine, kill_after=3)
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    before = {p.stem: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.h5")}
    assert len(before) >= 3 and not list(folder.glob(".*partial")), "the killed run leaves whole files only"
    summary = _run(slide_folder, out, engine)
    after = {p.stem: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.h5")}
    assert {k: after[k] for k in before} == before, "finished slides were recomputed"
    assert set(summary["skipped"]) == set(before)
    return summary, before


def test_local_and_ray_engines_resume_after_a_kill_and_write_the_same_files(slide_folder, tmp_path):
    n_slides = len(find_slides(slide_folder))
    results = {}
    for engine in ("local", "ray"):
        summary, before = _killed_then_resumed(slide_folder, tmp_path / engine, engine)
        assert list(summary["failed"]) == ["VIRT-CUT-SHORT"] and "truncated" in summary["failed"]["VIRT-CUT-SHORT"]
        assert len(summary["embedded"]) + len(before) == n_slides - 1
        results[engine] = Path(summary["folder"])
    assert results["local"].name == results["ray"].name  # same extractor, same fingerprint
    local, ray = load_feature_folder(results["local"]), load_feature_folder(results["ray"])
    assert sorted(local) == sorted(ray) and len(local) == n_slides - 1
    outlines = {engine: {p.stem: p.read_bytes() for p in (folder / "outlines").glob("*.geojson")} for engine, folder in results.items()}
    assert outlines["local"] == outlines["ray"] and sorted(outlines["local"]) == sorted(local)  # none for the slide that failed
    n_tiles = 0
    for slide_id in local:
        a, b = read_slide_features(results["local"] / f"{slide_id}.h5"), read_slide_features(results["ray"] / f"{slide_id}.h5")
        assert np.array_equal(a.coords, b.coords) and a.attrs == b.attrs
        np.testing.assert_allclose(b.features, a.features, rtol=0, atol=1e-5)
        n_tiles += len(a)
    assert n_tiles > 4_000  # 5,418 tiles on the 30 whole slides


def test_cli_names_a_truncated_slide_skips_it_and_counts_it(slide_folder, tmp_path, capsys):
    few = tmp_path / "few"
    few.mkdir()
    for path in sorted(slide_folder.glob("VIRT-0*.svs"))[:2] + [slide_folder / "VIRT-CUT-SHORT.svs"]:
        (few / path.name).symlink_to(path.resolve())
    status = main(["embed", str(few), "--out", str(tmp_path / "features"), "--backbone", "small", "--mpp", "1", "--tile-px", "64", "--no-progress"])
    captured = capsys.readouterr()
    assert status == 1  # finished, but not every slide
    assert "VIRT-CUT-SHORT" in captured.err and "truncated" in captured.err
    assert captured.out.startswith("2 slides embedded, 0 already done, 1 failed;") and "tiles/s" in captured.out and "on cpu" in captured.out
    status = main(["embed", str(few), "--out", str(tmp_path / "features"), "--backbone", "small", "--mpp", "1", "--tile-px", "64", "--no-progress"])
    assert "0 slides embedded, 2 already done, 1 failed" in capsys.readouterr().out


def test_outlines_go_beside_the_features_which_they_leave_unchanged(slide_folder, tmp_path, capsys):
    few = tmp_path / "few"
    few.mkdir()
    for path in sorted(slide_folder.glob("VIRT-0*.svs"))[:2] + [slide_folder / "VIRT-CUT-SHORT.svs"]:
        (few / path.name).symlink_to(path.resolve())
    embed = ["embed", str(few), "--backbone", "small", "--mpp", "1", "--tile-px", "64", "--no-progress"]
    assert main([*embed, "--out", str(tmp_path / "plain")]) == 1  # the slide cut short fails, the others finish
    assert main([*embed, "--out", str(tmp_path / "outlined"), "--outlines"]) == 1
    capsys.readouterr()
    (plain,), (outlined,) = list((tmp_path / "plain").iterdir()), list((tmp_path / "outlined").iterdir())
    slide_ids = sorted(p.stem for p in plain.glob("*.h5"))
    assert len(slide_ids) == 2 and not (plain / "outlines").exists()
    assert sorted(p.name for p in (outlined / "outlines").iterdir()) == [f"{slide_id}.geojson" for slide_id in slide_ids]
    for slide_id in slide_ids:
        a, b = read_slide_features(plain / f"{slide_id}.h5"), read_slide_features(outlined / f"{slide_id}.h5")
        assert np.array_equal(a.features, b.features) and np.array_equal(a.coords, b.coords) and a.attrs == b.attrs
        collection = json.loads((outlined / "outlines" / f"{slide_id}.geojson").read_text())
        assert collection["type"] == "FeatureCollection" and collection["features"]
        assert all(f["properties"]["objectType"] == "annotation" and f["geometry"]["type"] == "Polygon" for f in collection["features"])
    # a finished folder gets its missing outlines on the next run; its features are not recomputed
    features_before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in plain.glob("*.h5")}
    with pytest.warns(DataWarning, match="VIRT-CUT-SHORT"):
        summary = embed_cohort(few, tmp_path / "plain", extractor=ExtractorSpec("small"), mpp=1.0, tile_px=64, progress=False, outlines=True)
    assert sorted(summary.skipped) == slide_ids and summary.embedded == [] and list(summary.failed) == ["VIRT-CUT-SHORT"]
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in plain.glob("*.h5")} == features_before
    for slide_id in slide_ids:
        assert (plain / "outlines" / f"{slide_id}.geojson").read_bytes() == (outlined / "outlines" / f"{slide_id}.geojson").read_bytes()


def test_weights_that_do_not_fit_are_refused_before_any_slide_is_read(tmp_path, capsys):
    from torchvision.models import resnet18

    weights = tmp_path / "resnet18.pth"
    torch.save(resnet18().state_dict(), weights)
    missing_cohort = tmp_path / "not-read"  # no such folder: reading it would be another error
    status = main(["embed", str(missing_cohort), "--out", str(tmp_path / "f"), "--backbone", "resnet50", "--weights", str(weights)])
    err = capsys.readouterr().err
    assert status == 2 and "do not fit backbone 'resnet50'" in err and "of another shape" in err
    assert not (tmp_path / "f").exists()
    # the same file fits resnet18 (its classification head is dropped), so the cohort is read next
    status = main(["embed", str(missing_cohort), "--out", str(tmp_path / "f"), "--backbone", "resnet18", "--weights", str(weights)])
    assert status == 2 and "no such cohort folder" in capsys.readouterr().err
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pth: cannot be read as a weights file"):
        read_weights(tmp_path / "junk.pth")


def test_loaded_weights_name_the_folder_and_a_timm_model_checks_its_tile_size(tmp_path):
    import timm

    weights = tmp_path / "vit.pth"
    torch.manual_seed(1)
    torch.save(timm.create_model("vit_tiny_patch16_224", pretrained=False).state_dict(), weights)  # with its head: dropped
    extractor = ExtractorSpec("timm:vit_tiny_patch16_224", weights=str(weights)).build()
    again = ExtractorSpec("timm:vit_tiny_patch16_224", weights=str(weights), seed=5).build()
    assert extractor.fingerprint == again.fingerprint and extractor.name.startswith("timm-vit_tiny_patch16_224-")
    assert ExtractorSpec("timm:vit_tiny_patch16_224", seed=5).build().fingerprint != extractor.fingerprint
    extractor.check_tile_size(224)
    assert extractor(torch.zeros(2, 3, 224, 224, dtype=torch.uint8)).shape == (2, extractor.n_features)
    with pytest.raises(ValueError, match="does not take 64-px tiles"):
        extractor.check_tile_size(64)


def test_feature_files_round_trip_and_refuse_a_truncated_file(tmp_path):
    path = write_slide_features(tmp_path / "a.h5", np.ones((3, 4)), np.arange(6).reshape(3, 2), {"mpp": 0.5, "extractor": "x"})
    stored = read_slide_features(path)
    assert stored.features.dtype == np.float32 and stored.coords.tolist() == [[0, 1], [2, 3], [4, 5]]
    assert finished_slide(path, {"mpp": 0.5, "extractor": "x"}) and not finished_slide(path, {"mpp": 1.0, "extractor": "x"})
    assert not finished_slide(path, {"mpp": 0.5}, coords=np.zeros((3, 2)))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFormatError, match=r"a\.h5.*cannot be read as HDF5"):
        read_slide_features(path)
    assert not finished_slide(path, {"mpp": 0.5})
    with pytest.raises(ValueError, match="3 feature rows for 2 tile coordinates"):
        write_slide_features(tmp_path / "b.h5", np.ones((3, 4)), np.zeros((2, 2)))


def test_an_output_folder_made_with_other_settings_is_not_overwritten(slide_folder, tmp_path):
    one = {"one": next(slide_folder.glob("VIRT-0*.svs"))}
    summary = embed_cohort(one, tmp_path, extractor=ExtractorSpec("small"), mpp=1.0, tile_px=64, progress=False)
    assert summary.embedded == ["one"] and summary.device == "cpu"
    with pytest.raises(ValueError, match="holds features made with other settings"):
        embed_cohort(one, tmp_path, extractor=ExtractorSpec("small"), mpp=2.0, tile_px=64, progress=False)
