"""Write a notebook's results: its figures and one ``metrics.json``.

Every notebook ends with a single :func:`record_metrics` call; the runner reads the
``headline`` block back for its summary table, and the tests assert on ``metrics``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import atomic_path
from .environment import environment_report

if TYPE_CHECKING:
    from .ledger import FitLedger

__all__ = ["results_folder", "save_figure", "record_metrics", "read_metrics", "peak_memory_mb"]


def peak_memory_mb() -> float | None:
    """The largest resident memory this process (or any finished child, e.g. a DataLoader worker) has used, in MB.

    ``None`` where the operating system does not report it (Windows).
    """
    try:
        import resource
    except ImportError:
        return None
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 2**10  # ru_maxrss is bytes on macOS, kilobytes on Linux
    peaks = (resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return round(max(peaks) * scale, 1)


def results_folder(results_dir: str | os.PathLike) -> Path:
    """Create (if needed) and return the folder a notebook writes its results into."""
    path = Path(results_dir).expanduser().resolve()
    (path / "figures").mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, results_dir: str | os.PathLike, name: str, *, dpi: int = 110) -> None:
    """Save a matplotlib figure as ``<results_dir>/figures/<name>.png``.

    Returns nothing on purpose: notebooks end figure cells with this call, and a returned path
    would be printed under every figure.
    """
    fig.savefig(results_folder(results_dir) / "figures" / f"{name}.png", dpi=dpi, bbox_inches="tight")


def _plain(value: Any) -> Any:
    """Turn numpy scalars/arrays, paths and dataclass-likes into JSON-ready values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "as_dict"):
        return _plain(value.as_dict())
    return value


def record_metrics(
    results_dir: str | os.PathLike,
    *,
    metrics: dict[str, Any],
    headline: dict[str, Any],
    parameters: dict[str, Any],
    device: str | None = None,
    ledger: FitLedger | None = None,
) -> Path:
    """Write ``metrics.json``: metrics, headline figures, parameters, seed and environment.

    Parameters
    ----------
    results_dir : path
        The notebook's results folder.
    metrics : dict
        Everything a test or a reader may want, nested as you like (numpy values are fine).
    headline : dict
        The few numbers the runner shows in its summary table (e.g. ``{"C (Cox, test)": 0.71}``).
    parameters : dict
        The notebook's parameters (must include ``seed``).
    device : str, optional
    ledger : FitLedger, optional
        The notebook's fit ledger (:mod:`mmsurv.ledger`): checked first - a step that saw a
        held-out patient raises :class:`~mmsurv.ledger.HeldOutLeakError` and nothing is
        written - then stored as ``metrics["fit_ledger"]``.

    Returns
    -------
    Path
        The written file. It is written to a temporary file first and renamed, so a
        reader never sees half a file.
    """
    folder = results_folder(results_dir)
    if ledger is not None:
        ledger.check()
        metrics = {**metrics, "fit_ledger": ledger.as_dict()}
    record = {
        "headline": _plain(headline),
        "metrics": _plain(metrics),
        "parameters": _plain(parameters),
        "seed": parameters.get("seed"),
        "environment": environment_report(device),
        "peak_memory_mb": peak_memory_mb(),
    }
    target = folder / "metrics.json"
    with atomic_path(target) as partial:
        partial.write_text(json.dumps(record, indent=2))
    return target


def read_metrics(results_dir: str | os.PathLike) -> dict[str, Any]:
    """Load a notebook's ``metrics.json``."""
    path = Path(results_dir) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the notebook did not reach its record_metrics() call")
    return json.loads(path.read_text())
