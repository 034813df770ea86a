"""The package's shape: import walls (import-linter), lint and format (ruff), widgets imported lazily.

That committed notebooks carry no outputs is checked in ``test_notebooks.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, check=False)


def test_import_walls_hold():
    result = _run(BIN / "lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_wall_is_caught(tmp_path):
    # the same contracts on a copy of the package where a reader imports the virtual cohort
    shutil.copytree(ROOT / "mmsurv", tmp_path / "mmsurv", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    reader = tmp_path / "mmsurv" / "io" / "tcia.py"
    reader.write_text(reader.read_text() + "\nfrom ..virtual import COHORTS  # noqa: E402\n")
    result = _run(BIN / "lint-imports", cwd=tmp_path)
    assert result.returncode != 0
    assert "Readers never import the virtual cohort" in result.stdout and "BROKEN" in result.stdout
    assert "mmsurv.io.tcia -> mmsurv.virtual" in result.stdout


@pytest.mark.parametrize("command", [("check",), ("format", "--check")])
def test_ruff(command):
    result = _run(sys.executable, "-m", "ruff", *command, ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_views_import_ipywidgets_only_when_a_widget_is_built():
    code = (
        "import sys, mmsurv.pathology, mmsurv.radiology.volume_views, mmsurv.pathology.slide_views; "
        "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported at import time'"
    )
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
