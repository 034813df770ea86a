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

With ``write_ahead=True`` (``mmsurv run --write-ahead``) the cohorts of the later notebooks are
written *ahead*, by a background process at the lowest CPU priority (:func:`start_cohort_writer`),
meant to take the cycles the running notebook leaves idle. A notebook whose cohort is not
finished when its turn comes waits for it (the cohort's lock), and its ``cohort (s)`` column is
that wait; the writer's log is ``cohort-writer.log`` beside the summary. It is off by default:
on the kit's 2-core machine it slowed the running notebook about as much as it saved (issue 16:
notebook 01 took 543 s while the CT cohort, 157 s on its own, was written behind it, against
428 s and 478 s in two runs without). It pays where cores are spare, e.g. a GPU machine with
many CPU cores.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
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
    "start_cohort_writer",
    "stop_cohort_writer",
    "parse_parameter",
    "run_notebook",
    "run_notebooks",
    "format_summary",
    "write_summary",
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
    where = {"seed": int(parameters.get("seed", 0)), "size": "smoke" if smoke else "full", "data_dir": parameters.get("data_dir") or None}
    if writer is None:
        from .virtual import cohort_being_written
        from .virtual import virtual_cohort_files as writer

        if progress:
            for name in cohorts:
                if cohort_being_written(name, **where):  # e.g. by the background writer (start_cohort_writer)
                    tqdm.write(f"{name}: another process is writing this cohort; waiting for it (see cohort-writer.log when written ahead)")
    start = time.perf_counter()
    for name in cohorts:
        writer(name, **where, progress=progress)
    return round(time.perf_counter() - start, 1)


def _lowest_cpu_priority() -> None:
    """Runs in the writer's process before it starts: nice 19, for the process and its session.

    Where Linux groups processes by session for scheduling (``sched_autogroup``, on by default on
    desktops and on the kit's machines), nice values only rank processes *within* a session, and
    sessions share the CPU equally: a writer at nice 19 in its own session still took half of
    the cores from the notebook's kernel (which Jupyter starts in a session of its own). So the
    session's weight is lowered as well (``/proc/self/autogroup``).
    """
    os.nice(19)
    try:
        Path("/proc/self/autogroup").write_text("19")
    except OSError:  # no autogroup scheduling here (other systems, or switched off): the nice value suffices
        pass


def start_cohort_writer(
    notebooks: list[Path], *, smoke: bool, parameters: dict[str, Any] | None = None, log_path: Path, lowest_priority: bool = True
) -> subprocess.Popen | None:
    """Start a background process that writes the virtual cohorts of the later notebooks, in order.

    The process runs ``mmsurv generate`` at the lowest CPU priority, so it uses the cores only
    when the running notebook leaves them idle. The cohorts of the first notebook that reads any
    are left to the foreground (:func:`prepare_cohorts`, with its progress bar and ETA): nothing
    runs yet that the background could hide them behind. Returns ``None`` when there is nothing
    to write ahead: real data, or no cohort beyond that first notebook's.

    Parameters
    ----------
    notebooks : list of Path
        The notebooks about to run, in order (their ``metadata.mmsurv.cohorts`` name the cohorts).
    smoke : bool
        Smoke-size cohorts instead of full-size ones.
    parameters : dict, optional
        ``seed``, ``data_dir`` and ``data_source``, as the notebooks will take them.
    log_path : Path
        Where the writer's output goes (one line per finished cohort, or its error).
    lowest_priority : bool, default True
        Run at nice 19 (and the same for its session). ``False`` writes at normal priority,
        e.g. to test the writer on a machine busy with other work, where nice 19 gets no time.

    Returns
    -------
    subprocess.Popen or None
    """
    parameters = parameters or {}
    reading = [cohorts for cohorts in map(notebook_cohorts, notebooks) if cohorts]
    if len(reading) < 2 or parameters.get("data_source", "virtual") != "virtual":
        return None
    ahead = list(dict.fromkeys(name for cohorts in reading[1:] for name in cohorts if name not in reading[0]))
    if not ahead:
        return None
    command = [sys.executable, "-m", "mmsurv", "generate", *ahead, "--size", "smoke" if smoke else "full"]
    command += ["--seed", str(int(parameters.get("seed", 0))), "--no-progress"]
    if parameters.get("data_dir"):
        command += ["--data-dir", str(parameters["data_dir"])]
    with open(log_path, "w") as log:  # the child keeps its own handle
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(PROJECT_ROOT),
            start_new_session=True,  # its own process group: stopping it stops its slide-writing workers too
            preexec_fn=_lowest_cpu_priority if lowest_priority and hasattr(os, "nice") else None,
        )


def stop_cohort_writer(writer: subprocess.Popen | None, *, grace_s: float = 30.0) -> None:
    """Stop the background writer if it still runs (its half-written cohort is removed, as on Ctrl-C)."""
    if writer is None or writer.poll() is not None:
        return
    try:
        os.killpg(writer.pid, signal.SIGINT)  # KeyboardInterrupt: the writer deletes its partial folder
        writer.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait()
    except ProcessLookupError:
        pass


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


def format_summary(runs: list[NotebookRun], *, wall_s: float | None = None, written_ahead: bool = False) -> str:
    """A Markdown table: notebook, status, headline metrics, cohort and notebook wall times, peak memory, device; then a total.

    ``wall_s`` is the whole run's wall time, when known; ``written_ahead`` says the later cohorts
    were written in the background, so their ``cohort (s)`` is the wait for them.
    """
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
    total = f"{wall_s:.0f} s wall" if wall_s is not None else f"{cohorts + notebooks:.0f} s"
    lines.append(f"\nTotal {total}: {cohorts:.0f} s writing virtual cohorts, {notebooks:.0f} s executing notebooks.")
    if written_ahead:
        lines.append(
            "\nThe later notebooks' cohorts were written ahead, in the background at low priority (cohort-writer.log): "
            "their cohort (s) is the time the runner waited for them."
        )
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
    write_ahead: bool = False,
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
    write_ahead : bool, default False
        Write the later notebooks' virtual cohorts in a low-priority background process while
        the earlier notebooks run (:func:`start_cohort_writer`); worth it only with spare cores.

    Returns
    -------
    list of NotebookRun
    """
    notebooks = discover_notebooks(selection)
    root = Path(results_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    writer = start_cohort_writer(notebooks, smoke=smoke, parameters=parameters, log_path=root / "cohort-writer.log") if write_ahead else None
    runs = []
    try:
        for notebook in tqdm(notebooks, desc="notebooks", unit="nb", disable=not progress_bar):
            runs.append(run_notebook(notebook, root, smoke=smoke, parameters=parameters, cell_timeout=cell_timeout, progress_bar=progress_bar))
    finally:
        stop_cohort_writer(writer)
    write_summary(runs, root, wall_s=time.perf_counter() - started, written_ahead=writer is not None)
    return runs


def write_summary(runs: list[NotebookRun], folder: Path, *, wall_s: float | None = None, written_ahead: bool = False) -> None:
    """Write :func:`format_summary`'s table to ``folder/summary.md`` and the runs to ``folder/summary.json``."""
    (folder / "summary.md").write_text(format_summary(runs, wall_s=wall_s, written_ahead=written_ahead) + "\n")
    record = {"wall_s": None if wall_s is None else round(wall_s, 1), "notebooks": [asdict(run) for run in runs]}
    (folder / "summary.json").write_text(json.dumps(record, indent=2))
