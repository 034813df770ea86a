"""How fast ``mmsurv embed`` runs here, and what embedding TCGA-BRCA would take on 1 and 8 GPUs.

Measures, on this machine:

1. **Reading**: 224-px tiles read and decoded from the smoke cohort's slides by one process
   (strip reads, as both engines do), in tiles per second per core.
2. **Backbones** on the CPU: the small CNN on 64-px tiles, ResNet-18 and ResNet-50 on 224-px
   tiles, and every foundation-model recipe (:mod:`mmsurv.pathology.recipes`, random weights:
   the speed does not depend on them) on 224-px tiles, in tiles per second (all cores).
3. **The two engines end to end** on the smoke virtual cohort (120 slides, 21,803 tiles of
   64 px at 1 um/px, the small CNN): the local engine and the Ray engine (Ray's start included
   and given apart), each into a fresh folder.

Then it prints an estimate for TCGA-BRCA's diagnostic slides at 0.5 um/px from the measured
reading cost and an *assumed* GPU throughput per backbone (no GPU is measured here: the
assumptions are printed beside the table; ``benchmarks/gpu_check.py`` measures a real card).

Run: ``python3 -m uv run --locked python benchmarks/embed.py`` (about 3 minutes on 2 cores, and
about 4 minutes more for the recipes; ``--no-recipes`` skips them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from mmsurv.environment import environment_report
from mmsurv.io.slides import open_slide, tile_grid
from mmsurv.io.tiles import TileDataset
from mmsurv.pathology.cohort_embedding import embed_cohort, find_slides
from mmsurv.pathology.extractors import ExtractorSpec
from mmsurv.pathology.recipes import RECIPES, recipe_encoder
from mmsurv.virtual import virtual_cohort_files

# Assumptions of the estimate (not measured here). Tiles per slide: a TCGA diagnostic slide
# holds about 1-2 cm2 of tissue; at 0.5 um/px a 224-px tile covers 0.0125 mm2, so 1.5 cm2 is
# 12,000 tiles. GPU rates: PyTorch eager, mixed precision, batch 256, tiles already decoded.
TCGA_BRCA_SLIDES = 1_133
TILES_PER_SLIDE = 12_000
ASSUMED_GPU_TILES_PER_S = {"resnet50": 2_000, "ViT-L/16 (UNI-size)": 350}
CPU_CORES_PER_GPU = 16  # a typical cloud GPU node: 8 GPUs with 128 vCPUs, or one with 16


def reading_rate(slides: dict[str, Path], n_tiles: int = 2_000) -> float:
    """Tiles per second, one process, 224-px tiles at the slides' own resolution (strip reads)."""
    grids = []
    for path in slides.values():
        with open_slide(path) as slide:
            grids.append(tile_grid(slide, mpp=slide.mpp, tile_px=224, min_tissue=0.5))
        if sum(len(g) for g in grids) >= n_tiles:
            break
    dataset = TileDataset(grids, uint8=True)
    started = time.perf_counter()
    for start in range(0, len(dataset), 64):
        dataset.__getitems__(list(range(start, min(start + 64, len(dataset)))))
    return len(dataset) / (time.perf_counter() - started)


def _timed(model, images: torch.Tensor, n_tiles: int) -> float:
    """Tiles per second of ``model`` on batches of ``images`` (after a warm-up on a few of them), no gradients."""
    with torch.no_grad():
        model(images[:4])
        started = time.perf_counter()
        done = 0
        while done < n_tiles:
            model(images)
            done += len(images)
    return done / (time.perf_counter() - started)


def backbone_rate(backbone: str, tile_px: int, n_tiles: int) -> float:
    """Tiles per second of one backbone on the CPU (batch 32)."""
    return _timed(ExtractorSpec(backbone).build(), torch.randint(0, 255, (32, 3, tile_px, tile_px), dtype=torch.uint8), n_tiles)


def recipe_rate(name: str, n_tiles: int) -> tuple[float, float]:
    """(tiles per second, seconds to build) of one recipe with random weights on the CPU (batch 8)."""
    started = time.perf_counter()
    encoder = recipe_encoder(name).eval()
    built = time.perf_counter() - started
    return _timed(encoder, torch.rand(8, 3, 224, 224), n_tiles), built


def engine_run(slides: Path, engine: str) -> tuple[float, int, float]:
    """(seconds, tiles, seconds of it spent starting Ray) for one engine on the whole cohort."""
    out = Path(tempfile.mkdtemp(prefix=f"embed-{engine}-"))
    ray_start = 0.0
    try:
        if engine == "ray":
            import ray

            started = time.perf_counter()
            ray.init(include_dashboard=False, log_to_driver=False)
            ray_start = time.perf_counter() - started
        started = time.perf_counter()
        summary = embed_cohort(slides, out, extractor=ExtractorSpec("small"), mpp=1.0, tile_px=64, engine=engine, progress=False)
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if engine == "ray":
            ray.shutdown()
    return seconds, summary.n_tiles, ray_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer tiles per measurement")
    parser.add_argument("--no-recipes", action="store_true", help="skip the foundation-model recipes (several minutes on a CPU)")
    args = parser.parse_args()
    report = environment_report("cpu")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads; mmsurv commit {report.get('git_commit')}")
    cohort = virtual_cohort_files("brca", seed=0, size="smoke", progress=False)
    slides = find_slides(cohort.root)

    read = reading_rate(slides, 500 if args.quick else 2_000)
    print(f"\nreading 224-px tiles, one process: {read:,.0f} tiles/s")
    rates = {
        "small @ 64 px": backbone_rate("small", 64, 512 if args.quick else 4_096),
        "resnet18 @ 224 px": backbone_rate("resnet18", 224, 32 if args.quick else 128),
        "resnet50 @ 224 px": backbone_rate("resnet50", 224, 32 if args.quick else 96),
    }
    print("\nbackbone on this CPU (all cores), tiles/s:")
    for name, rate in rates.items():
        print(f"  {name:18s} {rate:8,.0f}")

    if not args.no_recipes:
        print("\nfoundation-model recipes on this CPU (all cores, random weights, 224-px tiles), tiles/s:")
        for name, recipe in RECIPES.items():
            rate, built = recipe_rate(name, 8 if args.quick or recipe.n_parameters > 5e8 else 32)
            print(f"  {name:15s} {rate:8,.1f}   ({recipe.n_parameters / 1e6:,.0f} M parameters, {recipe.n_features}-d; built in {built:.0f} s)")

    print("\nengines end to end, smoke cohort (small CNN, 64-px tiles at 1 um/px):")
    for engine in ("local", "ray"):
        seconds, tiles, ray_start = engine_run(cohort.root, engine)
        extra = f" (+ {ray_start:.1f} s to start Ray, not counted)" if engine == "ray" else ""
        print(f"  {engine:6s} {tiles:,} tiles in {seconds:6.1f} s = {tiles / seconds:7,.0f} tiles/s{extra}")

    tiles = TCGA_BRCA_SLIDES * TILES_PER_SLIDE
    print(f"\nestimate, TCGA-BRCA: {TCGA_BRCA_SLIDES:,} slides x {TILES_PER_SLIDE:,} tiles = {tiles / 1e6:.1f} M tiles of 224 px at 0.5 um/px")
    print(f"  assumptions: {CPU_CORES_PER_GPU} reading cores per GPU at this machine's {read:,.0f} tiles/s per core; GPU rates assumed, not measured")
    print(f"  {'backbone':22s} {'GPU tiles/s':>11s} {'reading/s':>10s} {'1 GPU (h)':>10s} {'8 GPUs (h)':>10s}  bound by")
    for backbone, gpu in ASSUMED_GPU_TILES_PER_S.items():
        reading = read * CPU_CORES_PER_GPU
        per_gpu = min(gpu, reading)
        hours = tiles / per_gpu / 3600
        print(f"  {backbone:22s} {gpu:11,d} {reading:10,.0f} {hours:10.1f} {hours / 8:10.1f}  {'GPU' if gpu < reading else 'reading'}")
    cpu = rates["resnet50 @ 224 px"]
    print(f"  resnet50 on this 2-core CPU alone: {tiles / cpu / 3600 / 24:,.0f} days")
    print("\n(nothing here is asserted; rerun on the machine you plan for)")


if __name__ == "__main__":
    main()
