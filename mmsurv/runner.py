"""Execute the kit's notebooks headless with papermill and summarise what they found.

``mmsurv run`` calls :func:`run_notebooks`: each notebook is executed in order with its
``parameters`` cell overridden (``smoke``, ``results_dir`` and any ``-p NAME=VALUE``); the
executed copy, its figures and its ``metrics.json`` land in ``results/<notebook>/``, and a
summary table (notebook, status, headline metrics, cohort and notebook wall times, peak memory,
device) is printed and written to ``results/summary.md`` and ``results/summary.json``.

A notebook that reads a virtual cohort names it in its metadata (``"mmsurv": {"cohorts":
["brca"]}``). On virtual data the runner writes that cohort *before* starting the kernel, with
its own progress bar and ETA, so the time spent writing files is visible and reported apart
from the notebook's (the ``cohort (s)`` column); the notebook then reads the finished files.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .environment import PROJECT_ROOT

__all__ = [
    "NotebookRun",
    "discover_notebooks",
    "notebook_cohorts",
    "prepare_cohorts",
    "parse_parameter",
    "run_notebook",
    "run_notebooks",
    "format_summary",
]

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
    cohort_s: float | None = None  # seconds spent writing (or finding) the notebook's virtual cohorts
    peak_memory_mb: float | None = None  # the kernel's peak resident memory, from its metrics.json


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


def notebook_cohorts(notebook: Path) -> list[str]:
    """The virtual cohorts a notebook reads, from its ``metadata.mmsurv.cohorts`` (empty if none)."""
    metadata = json.loads(Path(notebook).read_text()).get("metadata", {})
    return list(metadata.get("mmsurv", {}).get("cohorts", []))


def prepare_cohorts(
    notebook: Path, *, smoke: bool, parameters: dict[str, Any] | None = None, progress: bool = True, writer: Callable[..., Any] | None = None
) -> float | None:
    """Write the virtual cohorts ``notebook`` will read (if not on disk yet); returns the seconds it took.

    Returns ``None`` when the notebook reads no virtual cohort, or is told to read real data
    (``data_source`` other than ``"virtual"``). ``seed`` and ``data_dir`` come from
    ``parameters``, as the notebook would take them.
    """
    parameters = parameters or {}
    cohorts = notebook_cohorts(notebook)
    if not cohorts or parameters.get("data_source", "virtual") != "virtual":
        return None
    if writer is None:
        from .virtual import virtual_cohort_files as writer
    start = time.perf_counter()
    for name in cohorts:
        writer(
            name,
            seed=int(parameters.get("seed", 0)),
            size="smoke" if smoke else "full",
            data_dir=parameters.get("data_dir") or None,
            progress=progress,
        )
    return round(time.perf_counter() - start, 1)


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
    try:
        cohort_s = prepare_cohorts(notebook, smoke=smoke, parameters=parameters, progress=progress_bar)
    except Exception as err:  # noqa: BLE001 - reported like a failing cell; the next notebook still runs
        return NotebookRun(notebook.stem, "failed", 0.0, str(output_dir), error=f"writing the virtual cohort: {_error_message(err)}")
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
    run = NotebookRun(notebook.stem, "ok" if error is None else "failed", round(wall, 1), str(output_dir), error=error, cohort_s=cohort_s)
    metrics_path = output_dir / "metrics.json"
    if metrics_path.exists():
        record = json.loads(metrics_path.read_text())
        run.headline = record.get("headline", {})
        run.device = record.get("environment", {}).get("device")
        run.peak_memory_mb = record.get("peak_memory_mb")
    elif error is None:
        run.status, run.error = "failed", "the notebook finished without writing metrics.json"
    return run


def _format_value(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _format_optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_summary(runs: list[NotebookRun]) -> str:
    """A Markdown table: notebook, status, headline metrics, cohort and notebook wall times, peak memory, device; then a total."""
    lines = [
        "| notebook | status | headline metrics | cohort (s) | notebook (s) | peak memory (MB) | device |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        headline = "; ".join(f"{k} = {_format_value(v)}" for k, v in run.headline.items()) or "-"
        lines.append(
            f"| {run.notebook} | {run.status} | {headline} | {_format_optional(run.cohort_s, '.1f')} | {run.wall_s:.1f} "
            f"| {_format_optional(run.peak_memory_mb, ',.0f')} | {run.device or '-'} |"
        )
    cohorts = sum(run.cohort_s or 0.0 for run in runs)
    notebooks = sum(run.wall_s for run in runs)
    lines.append(f"\nTotal {cohorts + notebooks:.0f} s: {cohorts:.0f} s writing virtual cohorts, {notebooks:.0f} s executing notebooks.")
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
