"""Execute the kit's notebooks headless with papermill and summarise what they found.

``mmsurv run`` calls :func:`run_notebooks`: each notebook is executed in order with its
``parameters`` cell overridden (``smoke``, ``results_dir`` and any ``-p NAME=VALUE``); the
executed copy, its figures and its ``metrics.json`` land in ``results/<notebook>/``, and a
summary table (notebook, status, headline metrics, wall time, device) is printed and written
to ``results/summary.md`` and ``results/summary.json``.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .environment import PROJECT_ROOT

__all__ = ["NotebookRun", "discover_notebooks", "parse_parameter", "run_notebook", "run_notebooks", "format_summary"]

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


@dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    notebook: str
    status: str
    wall_s: float
    output_dir: str
    headline: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    error: str | None = None


def discover_notebooks(selection: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Resolve notebook names, number prefixes (``"00"``) or paths; default: all, in order.

    Raises
    ------
    ValueError
        If a selection matches no notebook, or more than one.
    """
    available = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        if not available:
            raise ValueError(f"no notebooks found in {folder}")
        return available
    chosen = []
    for item in selection:
        path = Path(item)
        if path.suffix == ".ipynb" and path.exists():
            chosen.append(path.resolve())
            continue
        matches = [nb for nb in available if nb.stem == item or nb.stem.startswith(item)]
        if len(matches) != 1:
            names = ", ".join(nb.stem for nb in available)
            problem = "matches no notebook" if not matches else f"is ambiguous ({len(matches)} matches)"
            raise ValueError(f"{item!r} {problem}; available: {names}")
        chosen.append(matches[0])
    return chosen


def parse_parameter(text: str) -> tuple[str, Any]:
    """Parse ``NAME=VALUE``: Python literals (``3``, ``0.5``, ``True``, ``'x'``), ``true``/``false``, else a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name.isidentifier():
        raise ValueError(f"parameter {text!r} is not of the form NAME=VALUE")
    lowered = raw.strip().lower()
    if lowered in {"true", "false"}:
        return name, lowered == "true"
    try:
        return name, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return name, raw


def _error_message(err: Exception) -> str:
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        cell = getattr(err, "exec_count", None)
        return f"cell {cell}: {ename}: {evalue}"
    return f"{type(err).__name__}: {err}"


def run_notebook(
    notebook: Path,
    results_root: Path,
    *,
    smoke: bool = False,
    parameters: dict[str, Any] | None = None,
    cell_timeout: int = 3600,
    progress_bar: bool = True,
) -> NotebookRun:
    """Execute one notebook with papermill and collect its headline metrics.

    Parameters
    ----------
    notebook : Path
    results_root : Path
        The notebook writes into ``results_root / <notebook stem>``.
    smoke : bool
        Passed to the notebook's ``smoke`` parameter (small, fast settings).
    parameters : dict, optional
        Further parameter overrides.
    cell_timeout : int, default 3600
        Seconds any one cell may run before the run fails.
    progress_bar : bool
        Show papermill's per-cell progress bar.

    Returns
    -------
    NotebookRun
    """
    import papermill

    from .notebook_engine import register

    output_dir = (results_root / notebook.stem).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    values = {"smoke": smoke, **(parameters or {}), "results_dir": str(output_dir)}
    # the kernel is started as "python": make sure that is this environment's interpreter
    interpreter_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != interpreter_dir:
        os.environ["PATH"] = interpreter_dir + os.pathsep + os.environ.get("PATH", "")
    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output_dir / notebook.name),
            parameters=values,
            kernel_name="python3",
            engine_name=register(),  # papermill's engine without the stall on Output widgets (see notebook_engine)
            cwd=str(notebook.parent),
            progress_bar=progress_bar,
            execution_timeout=cell_timeout,
        )
    except Exception as err:  # noqa: BLE001 - any failure is reported, the next notebook still runs
        error = _error_message(err)
    wall = time.perf_counter() - start
    run = NotebookRun(notebook.stem, "ok" if error is None else "failed", round(wall, 1), str(output_dir), error=error)
    metrics_path = output_dir / "metrics.json"
    if metrics_path.exists():
        record = json.loads(metrics_path.read_text())
        run.headline = record.get("headline", {})
        run.device = record.get("environment", {}).get("device")
    elif error is None:
        run.status, run.error = "failed", "the notebook finished without writing metrics.json"
    return run


def _format_value(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def format_summary(runs: list[NotebookRun]) -> str:
    """A Markdown table: notebook, status, headline metrics, wall time, device."""
    lines = ["| notebook | status | headline metrics | wall time (s) | device |", "|---|---|---|---|---|"]
    for run in runs:
        headline = "; ".join(f"{k} = {_format_value(v)}" for k, v in run.headline.items()) or "-"
        lines.append(f"| {run.notebook} | {run.status} | {headline} | {run.wall_s:.1f} | {run.device or '-'} |")
    failed = [run for run in runs if run.status != "ok"]
    for run in failed:
        lines.append(f"\nFAILED {run.notebook}: {run.error}")
    return "\n".join(lines)


def run_notebooks(
    selection: list[str] | None = None,
    *,
    smoke: bool = False,
    parameters: dict[str, Any] | None = None,
    results_root: str | os.PathLike = PROJECT_ROOT / "results",
    cell_timeout: int = 3600,
    progress_bar: bool = True,
) -> list[NotebookRun]:
    """Execute notebooks in order and write ``summary.md`` / ``summary.json`` under ``results_root``.

    Parameters
    ----------
    selection : list of str, optional
        Notebook names, number prefixes or paths; default all notebooks in ``notebooks/``.
    smoke : bool
        Small, fast settings (what the tests and CI run).
    parameters : dict, optional
        Overrides of notebook parameters, e.g. ``{"seed": 1}``.
    results_root : path, default ``results/``
    cell_timeout : int
        Seconds any one cell may run.
    progress_bar : bool

    Returns
    -------
    list of NotebookRun
    """
    notebooks = discover_notebooks(selection)
    root = Path(results_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    runs = []
    for notebook in tqdm(notebooks, desc="notebooks", unit="nb", disable=not progress_bar):
        runs.append(run_notebook(notebook, root, smoke=smoke, parameters=parameters, cell_timeout=cell_timeout, progress_bar=progress_bar))
    (root / "summary.md").write_text(format_summary(runs) + "\n")
    (root / "summary.json").write_text(json.dumps([asdict(run) for run in runs], indent=2))
    return runs
