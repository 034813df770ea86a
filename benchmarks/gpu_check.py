"""Benchmark: a one-command check of a CUDA GPU - tile embedders, the paper's 3D CT CNN, notebooks 01 and 02.

Measures, each section within its share of one time budget (default 450 s in all, so that the
whole check finishes within 8 minutes on one GPU):

1. tile embedding throughput (images/s, forward only, eval mode, ``torch.inference_mode``) of
   ResNet-18 and ResNet-50 from :func:`mmsurv.models.tile_backbone` (random initialisation:
   nothing is downloaded) on 224-px tiles, batch 256, in float32 and in mixed precision
   (autocast: bfloat16 where the GPU supports it, else float16, as
   :func:`mmsurv.training.autocast_for` chooses), each with the default (contiguous) and the
   channels-last memory layout; then, on CUDA, every foundation-model recipe
   (:mod:`mmsurv.pathology.recipes`: UNI, UNI2-h, Virchow2, H-optimus-0, Prov-GigaPath, Phikon-v2,
   ResNet-50 cut after layer 3) in float32 and mixed precision (``--no-recipes`` skips them);
2. training throughput (cubes/s: forward, backward and AdamW step) of the paper's 3D CNN
   (``ct_cnn("paper")``, Hosny et al. 2018) on 50^3 cubes, batch 32, in float32 and in mixed
   precision (autocast, with a gradient scaler when the autocast type is float16, as
   :mod:`mmsurv.training` does);
3. notebooks 01 and 02 in smoke mode on the GPU through :func:`mmsurv.runner.run_notebooks`:
   status, wall time, the device the notebook recorded, headline metrics. On a fresh machine
   the wall time includes writing the virtual cohorts (CPU work) the first time.

Every throughput is the batch size over the median of the timed steps, each step closed by
``torch.cuda.synchronize``, after warm-up steps (memory, cuDNN's kernel choice with
``cudnn.benchmark`` on). Inputs are random tensors already on the device: data loading and
host-to-device copies are not measured.

Prints an environment header (torch, CUDA, cuDNN, GPU name and memory), one table per
section with the peak GPU memory of each measurement (``torch.cuda.max_memory_allocated``),
and the elapsed time of each section; writes every figure to ``--out`` as JSON (atomically,
rewritten after each section, so that an interrupted run keeps what it measured).

Without a CUDA device (or with ``--quick``) the sizes shrink - 64-px tiles in batches of 16,
the paper's network on 28^3 cubes (the smallest its unpadded convolutions accept is 27^3) in
batches of 4, fewer steps - so that a CPU dry run takes about a minute; on a CPU only float32
is measured (bfloat16 crashes oneDNN on some processors) and the notebooks are skipped: the
GPU path is then unmeasured.

Run: ``python3 -m uv run python benchmarks/gpu_check.py [--device auto] [--quick] [--skip-notebooks] [--budget-s 450]
[--out results/gpu_check.json] [--results FOLDER]``; the exit status is 1 if a measurement or a notebook failed.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmsurv.atomic import atomic_path
from mmsurv.environment import PROJECT_ROOT, environment_report, select_device
from mmsurv.models import ct_cnn, tile_backbone
from mmsurv.pathology.recipes import RECIPES, recipe_encoder
from mmsurv.training import autocast_for

NO_CUDA = "no CUDA device: measured on CPU with reduced sizes; the GPU path is unmeasured"
TILE_BACKBONES = ("resnet18", "resnet50")
DEFAULT_NOTEBOOKS = ("01", "02")
#: Shares of the whole budget for the two throughput sections; the notebooks get what is left.
TILE_SHARE, CT_SHARE = 0.15, 0.10
#: A notebook is not started with less than this many seconds of the budget left.
MIN_NOTEBOOK_S = 60.0


@dataclass(frozen=True)
class Sizes:
    """Input sizes and step counts of the throughput sections.

    Parameters
    ----------
    name : str
        ``"full"`` (the GPU check) or ``"quick"`` (CPU dry run, ``--quick``).
    tile_px, tile_batch : int
        Side and batch size of the tile images.
    cube_side, cube_batch : int
        Side (voxels) and batch size of the CT cubes.
    warmup : int
        Untimed steps before timing.
    steps : int
        Timed steps at most (fewer when a measurement's time runs out, never fewer than 2).
    """

    name: str
    tile_px: int
    tile_batch: int
    cube_side: int
    cube_batch: int
    warmup: int
    steps: int


FULL = Sizes("full", tile_px=224, tile_batch=256, cube_side=50, cube_batch=32, warmup=5, steps=20)
QUICK = Sizes("quick", tile_px=64, tile_batch=16, cube_side=28, cube_batch=4, warmup=2, steps=5)


class Budget:
    """Seconds left of a time budget that starts when the object is made.

    Parameters
    ----------
    seconds : float
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.started

    def remaining(self) -> float:
        """Seconds left (negative once spent)."""
        return self.seconds - self.elapsed()

    def share(self, seconds: float) -> Budget:
        """A budget of ``seconds``, but no more than what is left of this one."""
        return Budget(max(0.0, min(seconds, self.remaining())))


def _is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def _sync(device: str) -> None:
    if _is_cuda(device):
        torch.cuda.synchronize(device)


def amp_dtype(device: str, choice: str) -> torch.dtype | None:
    """The autocast type on ``device``: None off CUDA; ``"auto"`` is bfloat16 where supported, else float16.

    Parameters
    ----------
    device : str
    choice : {"auto", "bfloat16", "float16"}

    Returns
    -------
    torch.dtype or None
    """
    if not _is_cuda(device):
        return None
    if choice == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, choice)


def _autocast(device: str, dtype: torch.dtype | None, choice: str) -> AbstractContextManager:
    """Mixed precision for one step: the kit's own context for ``"auto"``, nothing for ``dtype=None``."""
    if dtype is None:
        return nullcontext()
    if choice == "auto":
        return autocast_for(device)
    return torch.autocast(device_type="cuda", dtype=dtype)


def timed_steps(step: Callable[[], None], device: str, *, warmup: int, steps: int, seconds: float) -> list[float]:
    """Run ``warmup`` untimed steps, then time up to ``steps`` steps (at least 2) within ``seconds``.

    Parameters
    ----------
    step : callable
        One batch: a forward pass, or a training step.
    device : str
        On CUDA each timed step ends with ``torch.cuda.synchronize``.
    warmup, steps : int
    seconds : float
        Time for this measurement, warm-up included; the warm-up stops early (after one step)
        and the timed steps stop (after two) once it is spent.

    Returns
    -------
    list of float
        Seconds of each timed step.
    """
    deadline = time.perf_counter() + seconds
    for done in range(warmup):
        if done and time.perf_counter() > deadline:
            break
        step()
    _sync(device)
    durations: list[float] = []
    while len(durations) < steps and (len(durations) < 2 or time.perf_counter() < deadline):
        started = time.perf_counter()
        step()
        _sync(device)
        durations.append(time.perf_counter() - started)
    return durations


def _rate(durations: list[float], batch: int) -> dict[str, float | int]:
    median = statistics.median(durations)
    return {"per_s": batch / median, "median_step_s": median, "mean_step_s": statistics.fmean(durations), "steps": len(durations)}


def measured(device: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Call ``run`` with the peak GPU memory reset before and read after; a failure becomes an ``error`` entry.

    Parameters
    ----------
    device : str
    run : callable
        Returns the figures of one measurement.

    Returns
    -------
    dict
        ``run``'s figures (or ``error``), and ``peak_gpu_mib`` on CUDA.
    """
    if _is_cuda(device):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        result = run()
    except torch.cuda.OutOfMemoryError:
        result = {"error": "CUDA out of memory"}
    except Exception as err:  # noqa: BLE001 - one failed measurement is reported, the others still run
        result = {"error": f"{type(err).__name__}: {err}"}
    gc.collect()
    if _is_cuda(device):
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        torch.cuda.empty_cache()
    return result


@contextmanager
def cudnn_benchmark(device: str) -> Iterator[None]:
    """Let cuDNN pick the fastest kernels for the fixed input shapes (CUDA only), then restore the setting."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = _is_cuda(device)
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def tile_throughput(name: str, device: str, sizes: Sizes, *, dtype: torch.dtype | None, choice: str, channels_last: bool, seconds: float) -> dict:
    """Forward-only throughput of one tile embedder (eval mode, ``torch.inference_mode``).

    Parameters
    ----------
    name : str
        A backbone of :func:`mmsurv.models.tile_backbone` or a foundation-model recipe
        (:mod:`mmsurv.pathology.recipes`), built with random weights.
    device : str
    sizes : Sizes
    dtype : torch.dtype or None
        The autocast type, None for float32.
    choice : str
        The ``--amp-dtype`` choice (``"auto"`` uses :func:`mmsurv.training.autocast_for`).
    channels_last : bool
        Model and images in the channels-last layout.
    seconds : float
        Time for this measurement.

    Returns
    -------
    dict
        ``per_s`` (images/s), step times, ``n_features``.
    """
    torch.manual_seed(0)
    if name in RECIPES:
        model, n_features = recipe_encoder(name), RECIPES[name].n_features
    else:
        model, n_features = tile_backbone(name, pretrained=False)
    model = model.to(device).eval()
    images = torch.rand(sizes.tile_batch, 3, sizes.tile_px, sizes.tile_px, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.inference_mode(), _autocast(device, dtype, choice):
            model(images)

    durations = timed_steps(step, device, warmup=sizes.warmup, steps=sizes.steps, seconds=seconds)
    return {**_rate(durations, sizes.tile_batch), "n_features": n_features}


def ct_training_throughput(device: str, sizes: Sizes, *, dtype: torch.dtype | None, choice: str, seconds: float) -> dict:
    """Training throughput of the paper's 3D CNN: forward, cross-entropy, backward, AdamW step.

    Parameters
    ----------
    device : str
    sizes : Sizes
    dtype : torch.dtype or None
        The autocast type, None for float32; float16 adds a gradient scaler.
    choice : str
        The ``--amp-dtype`` choice (``"auto"`` uses :func:`mmsurv.training.autocast_for`).
    seconds : float
        Time for this measurement.

    Returns
    -------
    dict
        ``per_s`` (cubes/s), step times, ``grad_scaler``.
    """
    model = ct_cnn("paper", seed=0).to(device).train()
    side = sizes.cube_side
    generator = torch.Generator().manual_seed(0)
    cubes = torch.rand(sizes.cube_batch, 1, side, side, side, generator=generator).to(device)
    labels = torch.randint(0, 2, (sizes.cube_batch,), generator=generator).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with _autocast(device, dtype, choice):
            loss = nn.functional.cross_entropy(model(cubes).float(), labels)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()

    durations = timed_steps(step, device, warmup=sizes.warmup, steps=sizes.steps, seconds=seconds)
    return {**_rate(durations, sizes.cube_batch), "grad_scaler": scaler.is_enabled()}


def _precision(dtype: torch.dtype | None) -> str:
    return "float32" if dtype is None else f"mixed {str(dtype).removeprefix('torch.')}"


def _memory(row: dict) -> str:
    return f"{row['peak_gpu_mib']:8.0f}" if "peak_gpu_mib" in row else f"{'-':>8s}"


def _result_cells(row: dict) -> str:
    if "error" in row:
        return f"{'failed':>9s} {'':>8s} {'':>5s} {_memory(row)}  {row['error'][:90]}"
    if "skipped" in row:
        return f"{'skipped':>9s} {'':>8s} {'':>5s} {_memory(row)}  {row['skipped']}"
    return f"{row['per_s']:9.1f} {row['median_step_s'] * 1e3:8.1f} {row['steps']:5d} {_memory(row)}"


def tile_section(device: str, sizes: Sizes, choice: str, budget: Budget, recipes: tuple[str, ...] = ()) -> list[dict]:
    """Section 1: every tile backbone x precision x layout, then each recipe x precision; prints one line each."""
    dtypes: list[torch.dtype | None] = [None, amp_dtype(device, choice)] if _is_cuda(device) else [None]
    layouts = (False, True)
    print(
        f"\n[1/3] tile embedding, forward only (eval, inference_mode), {sizes.tile_px} px, batch {sizes.tile_batch}, random weights"
        f" | budget {budget.seconds:.0f} s"
    )
    print(f"{'backbone':14s} {'precision':15s} {'layout':14s} {'images/s':>9s} {'step ms':>8s} {'steps':>5s} {'peak MiB':>8s}")
    rows: list[dict] = []
    pending = (len(TILE_BACKBONES) * len(layouts) + len(recipes)) * len(dtypes)
    for name in (*TILE_BACKBONES, *recipes):
        for dtype in dtypes:
            for channels_last in layouts if name in TILE_BACKBONES else (False,):  # channels-last is a convolution layout
                row: dict[str, Any] = {"backbone": name, "precision": _precision(dtype), "layout": "channels_last" if channels_last else "contiguous"}
                row |= {"tile_px": sizes.tile_px, "batch": sizes.tile_batch}
                if budget.remaining() <= 0:
                    row["skipped"] = "time budget spent"
                else:
                    seconds = budget.remaining() / pending
                    run = partial(tile_throughput, name, device, sizes, dtype=dtype, choice=choice, channels_last=channels_last, seconds=seconds)
                    row |= measured(device, run)
                pending -= 1
                rows.append(row)
                print(f"{name:14s} {row['precision']:15s} {row['layout']:14s} {_result_cells(row)}", flush=True)
    if not _is_cuda(device):
        print("mixed precision: not measured (CUDA only)")
    return rows


def ct_section(device: str, sizes: Sizes, choice: str, budget: Budget) -> list[dict]:
    """Section 2: the paper's 3D CNN in training, float32 and mixed precision; prints one line each."""
    dtypes: list[torch.dtype | None] = [None, amp_dtype(device, choice)] if _is_cuda(device) else [None]
    side = sizes.cube_side
    print(f"\n[2/3] 3D CT CNN (paper architecture), training step (AdamW), {side}^3 cubes, batch {sizes.cube_batch} | budget {budget.seconds:.0f} s")
    print(f"{'network':9s} {'precision':15s} {'scaler':14s} {'cubes/s':>9s} {'step ms':>8s} {'steps':>5s} {'peak MiB':>8s}")
    rows: list[dict] = []
    for done, dtype in enumerate(dtypes):
        row: dict[str, Any] = {"network": "paper", "precision": _precision(dtype), "cube_side": side, "batch": sizes.cube_batch}
        if budget.remaining() <= 0:
            row["skipped"] = "time budget spent"
        else:
            seconds = budget.remaining() / (len(dtypes) - done)
            row |= measured(device, partial(ct_training_throughput, device, sizes, dtype=dtype, choice=choice, seconds=seconds))
        rows.append(row)
        scaler = {True: "GradScaler", False: "none"}.get(row.get("grad_scaler"), "-")
        print(f"{'paper':9s} {row['precision']:15s} {scaler:14s} {_result_cells(row)}", flush=True)
    if not _is_cuda(device):
        print("mixed precision (autocast + GradScaler): not measured (CUDA only)")
    return rows


def notebook_section(device: str, selection: list[str], results: Path, budget: Budget, save: Callable[[dict], None] | None = None) -> dict:
    """Section 3: each notebook in smoke mode on ``device``, one :func:`mmsurv.runner.run_notebooks` call each.

    One call per notebook lets the budget decide before each whether to start it (not with
    less than ``MIN_NOTEBOOK_S`` left) and bounds each of its cells by what was left at its
    start (``cell_timeout``). A notebook once started is not stopped between cells, so it can
    overrun the budget: the caller's own timeout is the hard limit. The folder's ``summary.md``
    and ``summary.json`` are rewritten at the end for all the notebooks run.

    Parameters
    ----------
    device : str
    selection : list of str
        Notebook names or number prefixes, as :func:`mmsurv.runner.run_notebooks` takes them.
    results : Path
        The notebooks' results folder.
    budget : Budget
    save : callable, optional
        Called with the section's figures so far after each notebook (to rewrite the JSON).

    Returns
    -------
    dict
        ``results`` (the folder) and ``runs`` (one entry per notebook: status, wall time, device, headline).
    """
    from mmsurv.runner import NotebookRun, run_notebooks, write_summary

    print(f"\n[3/3] notebooks {', '.join(selection)} in smoke mode on {device} | budget {budget.seconds:.0f} s | results in {results}")
    runs: list[NotebookRun] = []
    entries: list[dict] = []
    for name in selection:
        left = budget.remaining()
        if left < MIN_NOTEBOOK_S:
            entries.append({"notebook": name, "status": "skipped", "reason": f"time budget: {left:.0f} s left, {MIN_NOTEBOOK_S:.0f} s needed"})
            print(f"{name}: skipped ({entries[-1]['reason']})", flush=True)
            continue
        try:
            done = run_notebooks([name], smoke=True, parameters={"device": device}, results_root=results, cell_timeout=int(left), progress_bar=False)
        except Exception as err:  # noqa: BLE001 - e.g. an unknown selection: reported, the next notebook still runs
            entries.append({"notebook": name, "status": "failed", "error": f"{type(err).__name__}: {err}"})
            print(f"{name}: failed ({entries[-1]['error']})", flush=True)
            if save is not None:
                save({"results": str(results), "runs": entries})
            continue
        runs += done
        for run in done:
            entries.append(asdict(run))
            extras = [f"{label} {value:,.1f}" for label, value in _run_extras(run) if value is not None]
            print(
                f"{run.notebook}: {run.status} in {run.wall_s:.1f} s on {run.device or '-'}" + (f" ({', '.join(extras)})" if extras else ""),
                flush=True,
            )
            for key, value in run.headline.items():
                print(f"    {key} = {value:.4g}" if isinstance(value, float) else f"    {key} = {value}")
            if run.error:
                print(f"    error: {run.error}")
            if run.status == "ok" and not str(run.device or "").startswith("cuda"):
                print(f"    warning: the notebook recorded device {run.device!r}, not CUDA")
        if save is not None:
            save({"results": str(results), "runs": entries})
    if runs:
        write_summary(runs, results)
    return {"results": str(results), "runs": entries}


def _run_extras(run: object) -> list[tuple[str, float | None]]:
    """Figures that newer versions of :class:`mmsurv.runner.NotebookRun` carry (None where absent)."""
    return [("cohort writing s", getattr(run, "cohort_s", None)), ("kernel peak resident MB", getattr(run, "peak_memory_mb", None))]


def gpu_header(device: str) -> dict[str, Any]:
    """Torch, CUDA and cuDNN versions and, on CUDA, the GPU's name, memory and capabilities."""
    header: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "device": device,
    }
    if _is_cuda(device):
        properties = torch.cuda.get_device_properties(torch.device(device))
        header |= {
            "gpu": properties.name,
            "gpu_memory_gib": properties.total_memory / 2**30,
            "compute_capability": f"{properties.major}.{properties.minor}",
            "multiprocessors": properties.multi_processor_count,
            "bf16_supported": torch.cuda.is_bf16_supported(),
            "gpu_count": torch.cuda.device_count(),
        }
    return header


def _print_header(header: dict[str, Any], report: dict[str, Any], sizes: Sizes, budget: float) -> None:
    print(f"mmsurv GPU check | {datetime.now(UTC):%Y-%m-%d %H:%M} UTC | budget {budget:.0f} s | sizes {sizes.name}")
    print(
        f"torch {header['torch']} (built for CUDA {header['cuda_build']}, cuDNN {header['cudnn']}) | python {report['python']}"
        f" | git {report['git_commit']} | {report['cpu_count']} CPUs, {header['cpu_threads']} torch threads"
    )
    if "gpu" in header:
        print(
            f"device {header['device']}: {header['gpu']}, {header['gpu_memory_gib']:.1f} GiB, compute capability {header['compute_capability']},"
            f" {header['multiprocessors']} SMs, bf16 {'yes' if header['bf16_supported'] else 'no'} ({header['gpu_count']} GPU(s) visible)"
        )
    else:
        print(f"device {header['device']}")
        print(NO_CUDA)


def write_json(path: Path, record: dict) -> None:
    """Write ``record`` to ``path`` as JSON, atomically (:func:`mmsurv.atomic.atomic_path`)."""
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(record, indent=2, default=str) + "\n")


def _save_section(path: Path, record: dict, key: str, figures: dict) -> None:
    """Put one section's figures so far into ``record`` and rewrite the JSON."""
    record[key] = figures
    write_json(path, record)


def _failures(record: dict) -> list[str]:
    """What failed: measurements with an ``error``, failed sections, failed notebooks."""
    failed = []
    for section in ("tiles", "ct_cnn"):
        for row in record[section].get("rows", []):
            if "error" in row:
                failed.append(f"{section} {row.get('backbone', row.get('network'))} {row['precision']} {row.get('layout', '')}".rstrip())
    failed += [f"{section}: {record[section]['error']}" for section in ("tiles", "ct_cnn", "notebooks") if "error" in record[section]]
    failed += [f"notebook {run['notebook']}" for run in record["notebooks"].get("runs", []) if run.get("status") == "failed"]
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if present), 'cuda', 'cuda:N' or 'cpu' (default auto)")
    parser.add_argument("--quick", action="store_true", help="reduced sizes (automatic without CUDA)")
    parser.add_argument("--no-recipes", action="store_true", help="skip the foundation-model recipes in section 1 (measured on CUDA only)")
    parser.add_argument("--skip-notebooks", action="store_true", help="do not run the notebooks (skipped anyway without CUDA)")
    parser.add_argument("--notebooks", nargs="+", default=list(DEFAULT_NOTEBOOKS), help="notebooks to run in smoke mode (default 01 02)")
    parser.add_argument("--results", type=Path, default=None, help="results folder of the notebooks (default: a new temporary folder, kept)")
    parser.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "results" / "gpu_check.json", help="JSON file of all figures (default results/gpu_check.json)"
    )
    parser.add_argument("--budget-s", type=float, default=450.0, help="seconds for the whole check, notebooks included (default 450)")
    parser.add_argument(
        "--amp-dtype", choices=("auto", "bfloat16", "float16"), default="auto", help="autocast type on CUDA (default: as mmsurv.training)"
    )
    parser.add_argument("--tile-batch", type=int, default=None, help="tile batch size (default 256; quick 16)")
    parser.add_argument("--cube-batch", type=int, default=None, help="3D CNN batch size (default 32; quick 4)")
    args = parser.parse_args()

    budget = Budget(args.budget_s)
    device = select_device(args.device)
    cuda = _is_cuda(device)
    sizes = FULL if cuda and not args.quick else QUICK
    if args.tile_batch or args.cube_batch:
        sizes = Sizes(**{**asdict(sizes), "tile_batch": args.tile_batch or sizes.tile_batch, "cube_batch": args.cube_batch or sizes.cube_batch})
    report = environment_report(device)
    header = gpu_header(device)
    _print_header(header, report, sizes, args.budget_s)
    record: dict[str, Any] = {
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cuda": cuda,
        "note": None if cuda else NO_CUDA,
        "sizes": asdict(sizes),
        "amp_dtype": str(amp_dtype(device, args.amp_dtype)),
        "budget_s": args.budget_s,
        "header": header,
        "environment": report,
        "tiles": {},
        "ct_cnn": {},
        "notebooks": {},
    }
    write_json(args.out, record)

    recipes = tuple(RECIPES) if cuda and not args.no_recipes else ()  # on a CPU, benchmarks/embed.py measures them
    for key, share, section in (("tiles", TILE_SHARE, partial(tile_section, recipes=recipes)), ("ct_cnn", CT_SHARE, ct_section)):
        part = budget.share(share * args.budget_s)
        try:
            with cudnn_benchmark(device):
                record[key]["rows"] = section(device, sizes, args.amp_dtype, part)
        except Exception as err:  # noqa: BLE001 - the next section still runs
            record[key]["error"] = f"{type(err).__name__}: {err}"
            print(f"section failed: {record[key]['error']}")
        record[key] |= {"budget_s": part.seconds, "elapsed_s": part.elapsed()}
        print(f"section elapsed: {part.elapsed():.1f} s (whole check so far {budget.elapsed():.1f} s)")
        write_json(args.out, record)

    if args.skip_notebooks or not cuda:
        reason = "--skip-notebooks" if args.skip_notebooks else "no CUDA device (the check runs them on the GPU only)"
        record["notebooks"] = {"skipped": reason}
        print(f"\n[3/3] notebooks: skipped ({reason})")
    else:
        part = budget.share(budget.remaining())
        results = args.results or Path(tempfile.mkdtemp(prefix="mmsurv-gpu-check-"))
        try:
            save = partial(_save_section, args.out, record, "notebooks")
            record["notebooks"] = notebook_section(device, list(args.notebooks), results.resolve(), part, save=save)
        except Exception as err:  # noqa: BLE001 - reported in the JSON and the exit status
            record["notebooks"] = {"error": f"{type(err).__name__}: {err}"}
            print(f"section failed: {record['notebooks']['error']}")
        record["notebooks"] |= {"budget_s": part.seconds, "elapsed_s": part.elapsed()}
        print(f"section elapsed: {part.elapsed():.1f} s")

    record["total_s"] = budget.elapsed()
    record["peak_resident_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record["failures"] = _failures(record)
    write_json(args.out, record)
    print(
        f"\ntotal {record['total_s']:.1f} s of a {args.budget_s:.0f} s budget | peak resident memory {record['peak_resident_mib']:.0f} MiB | figures in {args.out}"
    )
    if not cuda:
        print(NO_CUDA)
    print("check: " + ("FAILED - " + "; ".join(record["failures"]) if record["failures"] else "ok"))
    return 1 if record["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
