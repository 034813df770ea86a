"""The virtual cohort on disk: cached by cohort, seed and size; never left half-written."""

from __future__ import annotations

import time

import pytest

from mmsurv.cli import main
from mmsurv.virtual import dataset as virtual_dataset
from mmsurv.virtual import virtual_cohort_files
from mmsurv.virtual.simulate import patient_code


def test_patient_codes_are_barcodes_with_the_centre_as_site():
    assert patient_code(3, 0) == "VIRT-03-0000"
    assert patient_code(1, 36 * 36 + 35) == "VIRT-01-010Z"


def test_cohort_is_cached_and_keyed_by_seed(virtual_files):
    cached = virtual_files["brca"]
    marker = cached.root / "cohort.json"
    written = marker.stat().st_mtime_ns
    again = virtual_cohort_files("brca", seed=0, size="smoke", data_dir=cached.root.parent.parent, progress=False)
    assert again.root == cached.root and marker.stat().st_mtime_ns == written  # read back, not rewritten
    assert again.truth.equals(cached.truth)
    assert {"true_risk", "proliferation", "immune", "invasion", "time", "event"} <= set(cached.truth.columns)
    assert cached.info["seed"] == 0 and cached.info["size"] == "smoke" and cached.root.name == "brca-seed0-smoke"


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def broken_writer(root, seed, size, pool):
        (root / "gdc").mkdir()
        (root / "gdc" / "half.tsv").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setitem(virtual_dataset._WRITERS, "brca", broken_writer)
    with pytest.raises(KeyboardInterrupt):
        virtual_cohort_files("brca", data_dir=tmp_path, progress=False)
    # only the empty lock file that serialises writers stays behind
    assert [p.name for p in (tmp_path / "virtual").iterdir()] == [".brca-seed0-smoke.lock"]


def test_a_partial_folder_left_by_a_killed_writer_is_removed_by_the_next(tmp_path, monkeypatch):
    import pandas as pd

    def writer(root, seed, size, pool):
        return pd.DataFrame({"patient_id": ["VIRT-01-0000"], "true_risk": [0.5]})

    monkeypatch.setitem(virtual_dataset._WRITERS, "brca", writer)
    stale = tmp_path / "virtual" / ".brca-seed0-smoke.partial-99999"  # a writer killed by SIGKILL mid-cohort
    (stale / "slides").mkdir(parents=True)
    (stale / "slides" / "half.tiff").write_bytes(b"II*\x00")
    virtual_cohort_files("brca", data_dir=tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "virtual").iterdir()) == [".brca-seed0-smoke.lock", "brca-seed0-smoke"]


def _slow_job(folder: str, number: int) -> None:
    """A stand-in for writing one slide; job 0 is where Ctrl-C arrives."""
    from pathlib import Path

    if number == 0:
        raise KeyboardInterrupt
    time.sleep(0.2)
    (Path(folder) / f"{number}.done").touch()


def test_ctrl_c_drops_the_jobs_not_started(tmp_path):
    """The pool stops after the jobs already running, so the interrupted cohort's folder can go at once."""
    jobs = [(str(tmp_path), number) for number in range(100)]
    with pytest.raises(KeyboardInterrupt):
        virtual_dataset._Pool(2, False, "test").run(_slow_job, jobs, "slides")
    finished = len(list(tmp_path.glob("*.done")))
    assert finished < 50  # all 99 took 10 s on two workers, with the test blocked in run() meanwhile
    time.sleep(0.5)
    assert len(list(tmp_path.glob("*.done"))) == finished  # and no worker goes on after run() has returned


def test_two_processes_asking_for_one_cohort_get_one_writer(tmp_path):
    """Two processes (two notebooks, two pytest-xdist workers) asking at once: one writes, the other waits and reads it."""
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from mmsurv.virtual import dataset\n"
        "import pandas as pd\n"
        "def writer(root, seed, size, pool):\n"
        "    print('writing', flush=True); time.sleep(2)\n"
        "    return pd.DataFrame({'patient_id': ['VIRT-01-0000'], 'true_risk': [0.5]})\n"
        "dataset._WRITERS['brca'] = writer\n"
        "cohort = dataset.virtual_cohort_files('brca', data_dir=sys.argv[1], progress=False)\n"
        "print('read', cohort.info['seconds'])\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert sum(output.count("writing") for output in outputs) == 1  # the second found the first one's cohort
    assert len({output.splitlines()[-1] for output in outputs}) == 1  # and read the same files


def test_a_cohort_written_by_other_generator_code_is_written_again(tmp_path, monkeypatch):
    import pandas as pd

    calls = []

    def writer(root, seed, size, pool):
        calls.append(seed)
        return pd.DataFrame({"patient_id": ["VIRT-01-0000"], "true_risk": [float(len(calls))]})

    monkeypatch.setitem(virtual_dataset._WRITERS, "brca", writer)
    first = virtual_cohort_files("brca", data_dir=tmp_path, progress=False)
    assert virtual_cohort_files("brca", data_dir=tmp_path, progress=False).truth.equals(first.truth) and len(calls) == 1
    assert first.info["generator_fingerprint"] == virtual_dataset.generator_fingerprint()
    # an edit to the generator's code, without a version bump, changes the fingerprint
    source = tmp_path / "package"
    (source / "virtual").mkdir(parents=True)
    (source / "io").mkdir()
    for path in [*sorted((virtual_dataset._PACKAGE / "virtual").glob("*.py"))]:
        (source / "virtual" / path.name).write_bytes(path.read_bytes())
    for name in virtual_dataset._GENERATOR_SOURCES:
        (source / name).write_bytes((virtual_dataset._PACKAGE / name).read_bytes())
    monkeypatch.setattr(virtual_dataset, "_PACKAGE", source)
    assert virtual_dataset.generator_fingerprint() == first.info["generator_fingerprint"]  # same code, same fingerprint
    with (source / "virtual" / "ct.py").open("a") as edited:
        edited.write("\n# necrotic cores are now darker\n")
    with pytest.warns(UserWarning, match="written by other generator code"):
        again = virtual_cohort_files("brca", data_dir=tmp_path, progress=False)
    assert len(calls) == 2 and again.truth["true_risk"].tolist() == [2.0]
    assert again.info["generator_fingerprint"] == virtual_dataset.generator_fingerprint() != first.info["generator_fingerprint"]


def test_unknown_cohort_and_size_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown virtual cohort 'kidney'"):
        virtual_cohort_files("kidney", data_dir=tmp_path)
    with pytest.raises(ValueError, match="size must be one of"):
        virtual_cohort_files("brca", size="huge", data_dir=tmp_path)
    assert main(["generate", "kidney", "--data-dir", str(tmp_path)]) == 2
    assert "unknown cohort" in capsys.readouterr().err


def test_cli_generate_reports_the_cohorts(virtual_files, capsys):
    data_dir = virtual_files["brca"].root.parent.parent
    assert main(["generate", "brca", "cesc", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "brca" in out and "120 patients" in out and "172 patients" in out  # brca has at least 120 patients; cesc the paper's 119 + 53


def test_dicom_file_names_do_not_depend_on_the_process(tmp_path):
    """Slices are written under shuffled names; the shuffle must come from the seed, not from hash()."""
    import os
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from mmsurv.virtual.ct import write_ct_series\n"
        "from mmsurv.virtual.geometry import ScanGeometry\n"
        "g = ScanGeometry(8, 4.0, 6, 4.0)\n"
        "write_ct_series(sys.argv[1], np.zeros((6, 8, 8), np.int16), g, {'patient_id': 'P', 'study_uid': '1.2', 'frame_uid': '1.3'},"
        " series_uid='1.2.3')\n"
    )
    names = []
    for hash_seed in ("1", "2"):
        folder = tmp_path / hash_seed
        subprocess.run([sys.executable, "-c", script, str(folder)], check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        names.append(sorted((p.name, p.read_bytes()) for p in folder.iterdir()))
    assert names[0] == names[1]
