"""Benchmark: reading 224-px tiles at 0.5 um/px from a >= 40,000 x 40,000 px pyramidal slide.

Writes (once, cached under ``data/benchmarks/``) a 40x Aperio-style SVS of the virtual cohort,
then, each path in a fresh process so that its peak memory is its own:

* ``naive``: a loop of one ``read_region`` call per tile, as most scripts do it;
* ``mmsurv``: :class:`mmsurv.io.tiles.TileDataset` (uint8 tiles, as the naive loop returns)
  through a ``DataLoader``, without and with two workers;

each in tile order (embedding every tile of a slide: neighbouring tiles of a row are merged
into one strip read) and in shuffled order (training), for both backends (OpenSlide and the
pure-Python tiffslide), and for each tile compression TCGA's SVS files use: JPEG, and Aperio's
JPEG 2000 with YCbCr (33003) or RGB (33005) samples. These figures decide what
``open_slide(backend="auto")`` picks for each compression. tiffslide is not run on 33003: its
colours there are wrong (``mmsurv.io.slides`` refuses it).

Prints tiles/s and the peak resident memory (main process, and the largest child process).

Run: ``python3 -m uv run python benchmarks/tiling.py [--size 40960] [--limit 4000] [--compressions jpeg jpeg2000-rgb ...]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from mmsurv.environment import environment_report
from mmsurv.virtual.dataset import default_data_dir

_MEASURE = r"""
import json, resource, sys, time
import numpy as np, torch
from mmsurv.io.slides import open_slide, tile_grid
from mmsurv.io.tiles import TileDataset
path, backend, mode, limit, workers, order = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
torch.set_num_threads(1)
imports_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
with open_slide(path, backend=backend) as slide:
    grid = tile_grid(slide, mpp=0.5, tile_px=224, min_tissue=0.5)
grid_s = time.perf_counter() - started
grid.tiles = grid.tiles.iloc[:limit]
if order == "shuffled":
    grid.tiles = grid.tiles.sample(frac=1.0, random_state=0).reset_index(drop=True)
checksum = 0.0
started = time.perf_counter()
if mode == "naive":
    if backend == "openslide":
        import openslide as reader
        handle = reader.OpenSlide(path)
    else:
        import tiffslide as reader
        handle = reader.TiffSlide(path)
    for x, y in zip(grid.tiles["x"], grid.tiles["y"]):
        tile = np.asarray(handle.read_region((int(x), int(y)), grid.level, (grid.read_px, grid.read_px)).convert("RGB"))
        checksum += float(tile[0, 0, 0])
else:
    loader = torch.utils.data.DataLoader(TileDataset(grid, backend=backend, uint8=True), batch_size=64, num_workers=workers)
    for batch in loader:
        checksum += float(batch["image"][:, 0, 0, 0].sum())
seconds = time.perf_counter() - started
peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"tiles": len(grid.tiles), "seconds": seconds, "grid_seconds": grid_s, "peak_mib": peak_self, "imports_mib": imports_mib,
                  "peak_worker_mib": peak_children, "level": grid.level, "read_px": grid.read_px}))
"""


def benchmark_slide(size: int, compression: str = "jpeg") -> Path:
    """The cached benchmark slide: ``size`` x ``size`` px at 0.25 um/px, tiles in ``compression``."""
    from mmsurv.virtual.slide_writer import repeating_tissue, write_svs
    from mmsurv.virtual.tissue import tissue_recipe

    suffix = "" if compression == "jpeg" else f"-{compression}"
    path = default_data_dir() / "benchmarks" / f"virtual-40x-{size}px{suffix}.svs"
    if not path.exists():
        recipe = tissue_recipe(0.5, 0.0, width_um=size * 0.25, height_um=size * 0.25, seed=7)
        started = time.perf_counter()
        write_svs(path, repeating_tissue(recipe), size, size, 0.25, metadata={"Filename": path.stem}, compression=compression)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - started:.0f} s")
    return path


def measure(path: Path, backend: str, mode: str, limit: int, workers: int, order: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), backend, mode, str(limit), str(workers), order], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40_960, help="slide side in pixels at 0.25 um/px (default 40960)")
    parser.add_argument("--limit", type=int, default=4_000, help="tiles read per path (default 4000)")
    parser.add_argument(
        "--compressions", nargs="+", default=["jpeg", "jpeg2000-ycbcr", "jpeg2000-rgb"], help="tile compressions of the slides (default: all three)"
    )
    args = parser.parse_args()
    paths = {compression: benchmark_slide(args.size, compression) for compression in args.compressions}
    print(f"slide: {args.size:,} x {args.size:,} px at 0.25 um/px; tiles of 224 px at 0.5 um/px\n")
    print(f"{'compression':15s} {'order':9s} {'backend':10s} {'path':22s} {'tiles':>6s} {'tiles/s':>8s} {'peak MiB':>9s} {'child MiB':>10s}")
    for compression, path in paths.items():
        for order in ("in order", "shuffled"):
            for backend in ("openslide", "tiffslide") if compression != "jpeg2000-ycbcr" else ("openslide",):
                for mode, workers in (("naive", 0), ("mmsurv", 0), ("mmsurv", 2)):
                    result = measure(path, backend, mode, args.limit, workers, order.replace("in order", "ordered"))
                    label = "naive read_region loop" if mode == "naive" else f"TileDataset, {workers} workers"
                    print(
                        f"{compression:15s} {order:9s} {backend:10s} {label:22s} {result['tiles']:6d} {result['tiles'] / result['seconds']:8.0f} "
                        f"{result['peak_mib']:9.0f} {result['peak_worker_mib']:10.0f}",
                        flush=True,
                    )
    print(f"\ntissue mask + tile grid: {result['grid_seconds']:.2f} s; pyramid level read: {result['level']} ({result['read_px']} px tiles)")
    print(
        f"peak resident memory of a process after its imports alone (torch, openslide, tiffslide): {result['imports_mib']:.0f} MiB;"
        " child MiB is the largest child process (DataLoader workers; importing torch also runs one short-lived helper)"
    )
    print(environment_report())


if __name__ == "__main__":
    main()
